//! Channel transports and message templates. The `DeliveryDispatcher` actor decides *when* to
//! send; this module knows *how*: email over SMTP (lettre on connections of our own, see
//! [`smtp`]) or into `.eml` files, rendered from minijinja templates; signed JSON POSTs to
//! configured [`webhook`] endpoints; text messages through an HTTP [`sms`] gateway; encrypted
//! Web Push notifications ([`push`]).

pub mod email;
pub mod push;
pub mod render;
pub mod sms;
pub mod smtp;
pub mod templates;
pub mod webhook;

/// Why one attempt failed: `permanent` failures are not retried (a bad address), the rest are.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    pub permanent: bool,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}
