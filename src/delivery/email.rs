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
    /// One address, or several separated by commas (admin alerts).
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
        let mut builder = Message::builder().from(from.clone());
        for to in self.to.split(',').map(str::trim) {
            let to: Mailbox = to
                .parse()
                .map_err(|e| SendError::permanent(format!("recipient `{to}`: {e}")))?;
            builder = builder.to(to);
        }
        let mut builder = builder
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

/// A part's body sent as it is (7bit when ASCII, 8bit otherwise) when every line fits the 998
/// octets SMTP allows, sparing the quoted-printable pass lettre's chooser makes for any line over
/// 76 characters (measured: encoding was a tenth of the send path's CPU). Otherwise lettre
/// chooses.
fn body(text: &str) -> Body {
    let plain = !text.contains(['\r', '\0']) && text.split('\n').all(|line| line.len() <= 998);
    if !plain {
        return Body::new(text.to_owned());
    }
    let encoding = if text.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Body::dangerous_pre_encoded(text.replace('\n', "\r\n").into_bytes(), encoding)
}

/// The file transport's directory: `mail/` in the store's directory.
pub fn mail_dir(store_path: &std::path::Path) -> PathBuf {
    store_path.join("mail")
}

/// Removes the file transport's copies of messages (`<name>.eml`) that must not outlive their
/// recipient; returns how many were there. Nothing to do for SMTP: the relay has them.
pub fn erase_files(store_path: &std::path::Path, names: &[String]) -> usize {
    let dir = mail_dir(store_path);
    names
        .iter()
        .filter(
            |name| match std::fs::remove_file(dir.join(format!("{name}.eml"))) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => {
                    tracing::error!(file = %name, error = %e, "erasing a mail file failed");
                    false
                }
            },
        )
        .count()
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
                let dir = mail_dir(store_path);
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

    /// Takes back a message sent to a recipient erased while it was in flight: the file
    /// transport's copy is removed (an SMTP relay's is beyond reach).
    pub fn discard(&self, name: &str) {
        if let Mailer::File { dir } = self {
            let _ = std::fs::remove_file(dir.join(format!("{name}.eml")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_go_as_they_are_when_their_lines_fit_smtp() {
        let long_ascii = format!("<p>{}</p>\nsecond line", "x".repeat(300));
        let b = body(&long_ascii);
        assert_eq!(b.encoding(), ContentTransferEncoding::SevenBit);
        assert_eq!(
            b.into_vec(),
            long_ascii.replace('\n', "\r\n").into_bytes(),
            "unchanged but for CRLF"
        );
        let euro = format!("{} 10 € off", "y".repeat(100));
        assert_eq!(body(&euro).encoding(), ContentTransferEncoding::EightBit);
        // Past SMTP's line limit lettre encodes it.
        let too_long = "z".repeat(1200);
        assert_ne!(
            body(&too_long).encoding(),
            ContentTransferEncoding::SevenBit
        );
    }
}
