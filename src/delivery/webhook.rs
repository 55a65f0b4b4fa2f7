//! Webhooks: a JSON POST to a named `[[webhooks]]` endpoint, signed `X-Signature:
//! sha256=<hex HMAC-SHA256 of the body>` with the endpoint's secret, with the delivery id in
//! `X-Voucherd-Delivery` (the same on every retry, so a receiver can drop repeats). A 2xx answer
//! is success; 410 Gone is permanent (the endpoint is retired); anything else is retried.

use std::collections::HashMap;
use std::time::Duration;

use super::SendError;
use crate::config::WebhookSettings;

struct Endpoint {
    url: String,
    secret: String,
    timeout: Duration,
}

pub struct Webhooks {
    client: reqwest::Client,
    endpoints: HashMap<String, Endpoint>,
}

impl Webhooks {
    pub fn new(settings: &[WebhookSettings]) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("voucherd/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let endpoints = settings
            .iter()
            .map(|w| {
                (
                    w.name.clone(),
                    Endpoint {
                        url: w.url.clone(),
                        secret: w.secret.expose().to_owned(),
                        timeout: Duration::from_secs(w.timeout_s),
                    },
                )
            })
            .collect();
        Ok(Self { client, endpoints })
    }

    pub fn has(&self, name: &str) -> bool {
        self.endpoints.contains_key(name)
    }

    /// POSTs `body` (JSON) to the endpoint `name`.
    pub async fn post(&self, name: &str, body: Vec<u8>, delivery: &str) -> Result<(), SendError> {
        let Some(e) = self.endpoints.get(name) else {
            return Err(SendError::permanent(format!(
                "no webhook `{name}` is configured"
            )));
        };
        let signature = crate::security::body_signature(e.secret.as_bytes(), &body);
        let sent = self
            .client
            .post(&e.url)
            .timeout(e.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Signature", signature)
            .header("X-Voucherd-Delivery", delivery)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if r.status() == reqwest::StatusCode::GONE => Err(SendError::permanent(format!(
                "webhook `{name}` answered 410 Gone"
            ))),
            Ok(r) => Err(SendError::transient(format!(
                "webhook `{name}` answered {}",
                r.status()
            ))),
            Err(err) if err.is_timeout() => Err(SendError::transient(format!(
                "webhook `{name}`: no answer within {} s",
                e.timeout.as_secs()
            ))),
            Err(err) => Err(SendError::transient(format!("webhook `{name}`: {err}"))),
        }
    }
}
