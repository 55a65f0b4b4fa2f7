//! Fetching one page: an HTTP request described by `feeds::request`, a local `file://` path, or
//! a feed built into the binary (`builtin:NAME`).
//! Bounded in time (the network's `timeout_s`) and size (`catalogue.max_response_mb`): a larger
//! answer fails the pull instead of filling memory.

use std::time::Duration;

use crate::clock::SharedClock;
use crate::feeds::{Auth, Method, Request};

#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Transport(String),
    #[error("reading {path}: {message}")]
    File { path: String, message: String },
}

/// Fetches pages; one per network actor, its connection pool reused across pulls.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
    /// Today, for built-in feeds whose dates are relative to the day they are served.
    clock: SharedClock,
}

impl Fetcher {
    pub fn new(max_bytes: usize, clock: SharedClock) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("voucherd/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        Ok(Self {
            client,
            max_bytes,
            clock,
        })
    }

    pub async fn fetch(&self, req: &Request, timeout: Duration) -> Result<Vec<u8>, FetchError> {
        if let Some(path) = req.url.strip_prefix("file://") {
            return self.read_file(path).await;
        }
        if let Some(name) = req.url.strip_prefix("builtin:") {
            return crate::feeds::builtin(name, self.clock.now().date_naive())
                .ok_or_else(|| FetchError::Transport(format!("no built-in feed `{name}`")));
        }
        let secs = timeout.as_secs();
        let work = self.fetch_http(req, timeout);
        // The overall deadline covers a server that trickles its body.
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(secs)),
        }
    }

    async fn fetch_http(&self, req: &Request, timeout: Duration) -> Result<Vec<u8>, FetchError> {
        let mut builder = match req.method {
            Method::Get => self.client.get(&req.url),
            Method::Post => self.client.post(&req.url),
        }
        .timeout(timeout)
        .header(reqwest::header::ACCEPT, req.accept);
        builder = match &req.auth {
            Auth::None => builder,
            Auth::Bearer(token) => builder.bearer_auth(token),
            Auth::Basic { user, password } => builder.basic_auth(user, Some(password)),
        };
        if let Some(body) = &req.json_body {
            builder = builder.json(body);
        }
        let secs = timeout.as_secs();
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout(secs)
            } else {
                // Without the URL: it may carry a token in its query.
                FetchError::Transport(e.without_url().to_string())
            }
        };
        let mut res = builder.send().await.map_err(transport)?;
        let status = res.status();
        let charset = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| {
                ct.split(';')
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
                    .map(|(_, v)| v.trim().trim_matches('"').to_owned())
            });
        if res
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        // A body the server says is in another charset goes on as UTF-8.
        if let Some(encoding) = charset
            .as_deref()
            .and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes()))
            .filter(|e| *e != encoding_rs::UTF_8)
        {
            let (text, _, _) = encoding.decode(&body);
            body = text.into_owned().into_bytes();
        }
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(FetchError::Status {
                status: status.as_u16(),
                body: text.trim().to_owned(),
            });
        }
        Ok(body)
    }

    async fn read_file(&self, path: &str) -> Result<Vec<u8>, FetchError> {
        let err = |e: std::io::Error| FetchError::File {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let meta = tokio::fs::metadata(path).await.map_err(err)?;
        if meta.len() > self.max_bytes as u64 {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        tokio::fs::read(path).await.map_err(err)
    }
}
