//! Email: building the MIME message and sending it, over SMTP (connections opened by
//! [`super::smtp`], reused between messages) or into `.eml` files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};

use super::SendError;
use super::smtp::SmtpSender;
use crate::config::{EmailSettings, EmailTransportKind};

/// A message ready to build.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// With angle brackets, e.g. `<digest-…@host>`.
    pub message_id: String,
    /// The one-click unsubscribe URL (RFC 8058), when the message has one.
    pub unsubscribe_url: Option<String>,
}

impl Email {
    /// The MIME message: multipart/alternative (text, then HTML), with `List-Unsubscribe` and
    /// `List-Unsubscribe-Post` when there is an unsubscribe URL.
    pub fn build(&self, from: &Mailbox) -> Result<Message, SendError> {
        let to: Mailbox = self
            .to
            .parse()
            .map_err(|e| SendError::permanent(format!("recipient `{}`: {e}", self.to)))?;
        let mut builder = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(self.subject.clone())
            .message_id(Some(self.message_id.clone()))
            .date_now();
        if let Some(url) = &self.unsubscribe_url {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(body(&self.text)),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(body(&self.html)),
                    ),
            )
            .map_err(|e| SendError::permanent(format!("building the message: {e}")))
    }
}

/// A part's body as 8bit when its lines allow it (under 998 bytes: every rendered digest), which
/// spares the quoted-printable pass (measured: encoding was a tenth of the send path's CPU);
/// otherwise lettre's own choice of 7bit or quoted-printable.
fn body(text: &str) -> Body {
    Body::new_with_encoding(text.to_owned(), ContentTransferEncoding::EightBit)
        .unwrap_or_else(|_| Body::new(text.to_owned()))
}

/// Where email goes.
#[derive(Clone)]
pub enum Mailer {
    /// Each message as `<dir>/<name>.eml` (the embedded default: nothing to set up).
    File { dir: PathBuf },
    /// An SMTP relay, connections kept and reused.
    Smtp(Arc<SmtpSender>),
}

impl Mailer {
    pub fn from_settings(
        settings: &EmailSettings,
        store_path: &std::path::Path,
    ) -> anyhow::Result<Self> {
        Ok(match settings.transport {
            EmailTransportKind::File => {
                let dir = store_path.join("mail");
                std::fs::create_dir_all(&dir)?;
                Mailer::File { dir }
            }
            EmailTransportKind::Smtp => Mailer::Smtp(Arc::new(SmtpSender::from_url(
                &settings.smtp_url,
                Duration::from_secs(settings.timeout_s),
                settings.pool_size as usize,
            )?)),
        })
    }

    /// Sends one message; `name` names its file for the file transport.
    pub async fn send(&self, message: Message, name: &str) -> Result<(), SendError> {
        match self {
            Mailer::File { dir } => {
                let path = dir.join(format!("{name}.eml"));
                let tmp = dir.join(format!(".{name}.eml.tmp"));
                tokio::fs::write(&tmp, message.formatted())
                    .await
                    .map_err(|e| SendError::transient(format!("writing {}: {e}", tmp.display())))?;
                tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(|e| SendError::transient(format!("writing {}: {e}", path.display())))
            }
            Mailer::Smtp(sender) => sender.send(&message).await,
        }
    }
}
