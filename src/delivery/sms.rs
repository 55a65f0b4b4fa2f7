//! SMS: a JSON `POST {url} {"to": "+E.164", "body": "…"}` with `Authorization: Bearer {api_key}`
//! to the configured gateway, with the delivery id in `X-Voucherd-Delivery` (the same on every
//! retry). A 2xx answer is sent; a 4xx other than 408 and 429 is permanent (the gateway refuses
//! this message, e.g. the number); anything else is retried.

use std::time::Duration;

use super::SendError;
use crate::config::SmsSettings;

pub struct Sms {
    client: reqwest::Client,
    url: String,
    api_key: String,
    timeout: Duration,
}

impl Sms {
    /// `None` when SMS is not configured (`[delivery.sms] url` empty).
    pub fn new(settings: &SmsSettings) -> Result<Option<Self>, reqwest::Error> {
        if !settings.enabled() {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("voucherd/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Some(Self {
            client,
            url: settings.url.clone(),
            api_key: settings.api_key.expose().to_owned(),
            timeout: Duration::from_secs(settings.timeout_s),
        }))
    }

    pub async fn send(&self, to: &str, body: &str, delivery: &str) -> Result<(), SendError> {
        let mut req = self
            .client
            .post(&self.url)
            .timeout(self.timeout)
            .header("X-Voucherd-Delivery", delivery)
            .json(&serde_json::json!({"to": to, "body": body}));
        if !self.api_key.is_empty() {
            req = req.bearer_auth(&self.api_key);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => {
                let status = r.status();
                let permanent = status.is_client_error()
                    && status != reqwest::StatusCode::REQUEST_TIMEOUT
                    && status != reqwest::StatusCode::TOO_MANY_REQUESTS;
                let message = format!("the SMS gateway answered {status}");
                Err(if permanent {
                    SendError::permanent(message)
                } else {
                    SendError::transient(message)
                })
            }
            Err(e) if e.is_timeout() => Err(SendError::transient(format!(
                "the SMS gateway did not answer within {} s",
                self.timeout.as_secs()
            ))),
            Err(e) => Err(SendError::transient(format!("the SMS gateway: {e}"))),
        }
    }
}
