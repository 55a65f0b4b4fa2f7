//! SMTP at line rate: connections voucherd opens itself, with `TCP_NODELAY`, handed to lettre.
//!
//! lettre's pooled transport leaves Nagle on and writes a message's body and its closing
//! `\r\n.\r\n` in two writes; against a server that delays its ACK (most do, ~40 ms) every
//! message then waits for that ACK. Here each connection is a `tokio::net::TcpStream` with
//! `TCP_NODELAY`, given to `AsyncSmtpConnection::connect_with_transport`; STARTTLS and AUTH go
//! through lettre. Idle connections are kept (at most `pool_size`) and reused by the next send, so
//! each sender in flight holds one connection; a broken one is dropped and the next send connects
//! anew. Implicit TLS (`smtps://`) connects through lettre's own TLS path.

use std::time::{Duration, Instant};

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use parking_lot::Mutex;

use super::SendError;
use crate::config::{SmtpEndpoint, SmtpSecurity as Security};

/// An idle connection is not reused after this long (servers close idle sessions).
const IDLE_MAX: Duration = Duration::from_secs(50);

pub struct SmtpSender {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpSender {
    /// Connections to `endpoint`, at most `pool_size` kept idle.
    pub fn new(endpoint: &SmtpEndpoint, timeout: Duration, pool_size: usize) -> Self {
        Self {
            host: endpoint.host.clone(),
            port: endpoint.port,
            security: endpoint.security,
            credentials: endpoint
                .credentials
                .as_ref()
                .map(|(u, p)| Credentials::new(u.clone(), p.clone())),
            hello: endpoint
                .hello_name
                .clone()
                .map_or_else(ClientId::default, ClientId::Domain),
            timeout,
            max_idle: pool_size.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// [`SmtpSender::new`] from `delivery.email.smtp_url`'s text.
    pub fn from_url(url: &str, timeout: Duration, pool_size: usize) -> anyhow::Result<Self> {
        let endpoint = SmtpEndpoint::parse(url).map_err(anyhow::Error::msg)?;
        Ok(Self::new(&endpoint, timeout, pool_size))
    }

    /// Sends one message on an idle connection or a new one.
    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        let envelope = message.envelope().clone();
        let bytes = message.formatted();
        let mut conn = match self.take_idle() {
            Some(c) => c,
            None => tokio::time::timeout(self.timeout, self.connect())
                .await
                .map_err(|_| SendError::transient("smtp: connecting timed out"))??,
        };
        match tokio::time::timeout(self.timeout, conn.send(&envelope, &bytes)).await {
            Ok(Ok(_)) => {
                self.put_back(conn);
                Ok(())
            }
            Ok(Err(e)) => {
                // A rejected message leaves a healthy session (the server answered); keep it.
                if !conn.has_broken() && (e.is_permanent() || e.is_transient()) {
                    self.put_back(conn);
                }
                Err(classify("sending", &e))
            }
            Err(_) => Err(SendError::transient("smtp: sending timed out")),
        }
    }

    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock();
        while let Some((conn, since)) = idle.pop() {
            if since.elapsed() < IDLE_MAX && !conn.has_broken() {
                return Some(conn);
            }
        }
        None
    }

    fn put_back(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let lettre = |e: lettre::transport::smtp::Error| classify("connecting", &e);
        let tls = || TlsParameters::new(self.host.clone()).map_err(lettre);
        let mut conn = if self.security == Security::Implicit {
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                Some(tls()?),
                None,
            )
            .await
            .map_err(lettre)?
        } else {
            let io = |e: std::io::Error| SendError::transient(format!("smtp connecting: {e}"));
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(io)?;
            tcp.set_nodelay(true).map_err(io)?;
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(lettre)?
        };
        let starttls = match self.security {
            Security::StartTlsRequired => true,
            Security::StartTlsOpportunistic => conn.can_starttls(),
            Security::Plain | Security::Implicit => false,
        };
        if starttls {
            conn.starttls(tls()?, &self.hello).await.map_err(lettre)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(lettre)?;
        }
        Ok(conn)
    }
}

fn classify(what: &str, e: &lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::permanent(format!("smtp {what}: {e}"))
    } else {
        SendError::transient(format!("smtp {what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_security_ports_and_credentials() {
        let t = Duration::from_secs(1);
        let s = SmtpSender::from_url("smtp://127.0.0.1:1025", t, 4).unwrap();
        assert_eq!(
            (s.security, s.port, s.host.as_str()),
            (Security::Plain, 1025, "127.0.0.1")
        );
        let s = SmtpSender::from_url("smtp://u%40x:p%20w@mail.example?tls=required", t, 4).unwrap();
        assert_eq!((s.security, s.port), (Security::StartTlsRequired, 587));
        assert!(s.credentials.is_some());
        let s = SmtpSender::from_url("smtps://mail.example", t, 4).unwrap();
        assert_eq!((s.security, s.port), (Security::Implicit, 465));
        assert!(SmtpSender::from_url("http://mail.example", t, 4).is_err());
        assert!(SmtpSender::from_url("smtp://mail.example?tls=sometimes", t, 4).is_err());
    }
}
