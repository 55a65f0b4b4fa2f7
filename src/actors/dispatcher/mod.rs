//! DeliveryDispatcher: sends what the durable outbox holds.
//!
//! One loop: claim the due deliveries (compare-and-swap, with a lease), send each through its
//! channel (email: at most `pool_size` in flight and `per_second` started per second; SMS: a few
//! in flight and its `per_second`; webhooks: their own few in flight), then
//! settle it: `sent`, or `failed` with a retry time (exponential backoff with jitter), or `dead`
//! after `max_attempts` (or at once for a permanent failure such as a rejected address), which
//! also raises a `delivery_failing` notification (at most one an hour). It sleeps until the next
//! due entry or until woken through its `Notify` (digests committed, `Wake`). At start it resumes
//! whatever a previous run left claimed. A crash in the middle of a send retries that message
//! after restart with the same `Message-ID`.

mod handlers;
mod send;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Supervised, WrapFuture};
use lettre::message::Mailbox;
use tokio::sync::Notify;

use super::supervise::{SupervisedActor, note_restart};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::delivery::email::Mailer;
use crate::delivery::templates::Templates;
use crate::domain::network::Backoff;
use crate::security::LinkSigner;
use crate::store::Store;

/// How long a claim holds before another attempt may take the message over.
pub const LEASE: Duration = Duration::from_secs(300);
/// A claim is not started this close to the end of its lease (beyond the send timeout).
pub const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// The loop looks at the outbox at least this often (the clock may be moved in tests).
pub const MAX_SLEEP: Duration = Duration::from_secs(1);

/// What sending needs, shared by the loop and its in-flight sends.
pub struct Outbound {
    pub store: Store,
    pub clock: SharedClock,
    pub mailer: Mailer,
    pub from: Mailbox,
    pub templates: Arc<Templates>,
    pub signer: LinkSigner,
    pub public_url: String,
    /// The host part of `Message-ID`s.
    pub host: String,
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub pool_size: usize,
    pub per_second: u32,
    /// The longest one send may take (the transport's timeout).
    pub send_timeout: Duration,
    pub webhooks: crate::delivery::webhook::Webhooks,
    /// The SMS gateway, when configured.
    pub sms: Option<crate::delivery::sms::Sms>,
    pub sms_per_second: u32,
    pub push: crate::delivery::push::Push,
    pub push_per_second: u32,
    /// Who gets admin alerts.
    pub admin_emails: Vec<String>,
    last_alert: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Outbound {
    pub fn new(
        settings: &Settings,
        store: Store,
        clock: SharedClock,
        templates: Arc<Templates>,
        signer: LinkSigner,
        vapid: Arc<crate::delivery::push::Vapid>,
    ) -> anyhow::Result<Self> {
        let email = &settings.delivery.email;
        let public_url = settings
            .http
            .public_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let host = url::Url::parse(&public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "voucherd.localhost".to_owned());
        Ok(Self {
            mailer: Mailer::from_settings(email, &settings.store.path)?,
            from: email.from.parse()?,
            store,
            clock,
            templates,
            signer,
            public_url,
            host,
            max_attempts: settings.delivery.max_attempts,
            backoff: Backoff {
                base: chrono::Duration::seconds(settings.delivery.retry_base_s as i64),
                max: chrono::Duration::seconds(settings.delivery.retry_max_s as i64),
                failing_after: settings.delivery.max_attempts,
            },
            pool_size: email.pool_size as usize,
            per_second: email.per_second,
            // The longest any channel's transport may take.
            send_timeout: Duration::from_secs(
                settings
                    .webhooks
                    .iter()
                    .map(|w| w.timeout_s)
                    .chain([
                        email.timeout_s,
                        settings.delivery.sms.timeout_s,
                        settings.delivery.push.timeout_s,
                    ])
                    .max()
                    .unwrap_or(email.timeout_s),
            ),
            webhooks: crate::delivery::webhook::Webhooks::new(&settings.webhooks)?,
            sms: crate::delivery::sms::Sms::new(&settings.delivery.sms)?,
            sms_per_second: settings.delivery.sms.per_second,
            push: crate::delivery::push::Push::new(&settings.delivery.push, vapid)?,
            push_per_second: settings.delivery.push.per_second,
            admin_emails: settings.notify.admin_emails.clone(),
            last_alert: std::sync::Mutex::new(None),
        })
    }
}

/// The runtime sends run on: two worker threads beside the actors' one, so one message's
/// rendering or SMTP round trip does not hold up the others. Shut down (in-flight sends
/// abandoned: their leases lapse and they are sent again) when the dispatcher goes.
pub struct SendRuntime(Option<tokio::runtime::Runtime>);

impl SendRuntime {
    pub fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("voucherd-send")
            .enable_all()
            .build()?;
        Ok(Self(Some(rt)))
    }

    fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.0.as_ref().map(|rt| rt.handle().clone())
    }
}

impl Drop for SendRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

pub struct DeliveryDispatcher {
    outbound: Arc<Outbound>,
    wake: Arc<Notify>,
    sends: SendRuntime,
}

impl DeliveryDispatcher {
    pub fn new(outbound: Arc<Outbound>, wake: Arc<Notify>, sends: SendRuntime) -> Self {
        Self {
            outbound,
            wake,
            sends,
        }
    }
}

impl Actor for DeliveryDispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let outbound = self.outbound.clone();
        let wake = self.wake.clone();
        match self.sends.handle() {
            Some(sends) => {
                ctx.spawn(send::run(outbound, wake, sends).into_actor(self));
            }
            None => tracing::error!("the delivery runtime is gone; nothing is sent"),
        }
    }
}

impl Supervised for DeliveryDispatcher {
    fn restarting(&mut self, _: &mut Context<Self>) {
        note_restart::<Self>();
    }
}

impl SupervisedActor for DeliveryDispatcher {
    const NAME: &'static str = "delivery_dispatcher";
}
