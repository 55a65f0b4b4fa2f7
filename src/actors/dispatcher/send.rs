//! The dispatcher's loop and one send.
//!
//! The loop claims a batch, reads what every claimed message needs in one store hop, and hands
//! each to the delivery runtime (its own worker threads, so rendering and SMTP round trips do not
//! queue behind each other on the actors' one thread).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use uuid::Uuid;

use super::{LEASE, LEASE_MARGIN, MAX_SLEEP, Outbound};
use crate::delivery::SendError;
use crate::delivery::render::{
    VoucherLine, alert_email, already_registered_email, code_email, code_sms, confirm_email,
    digest_email, phone_code_sms, requested_sms,
};
use crate::domain::campaign::Campaign;
use crate::domain::delivery::{AccountMail, Channel, Delivery, DeliveryStatus, Payload};
use crate::domain::digest::DigestRecord;
use crate::domain::notification::{Notification, NotificationKind};
use crate::domain::user::{PhoneChallenge, User};
use crate::domain::voucher::Voucher;
use crate::store::deliveries::Attempt;
use crate::store::{Store, StoreError};

/// How far ahead of the rate cap's schedule a start may run before the loop sleeps.
const RATE_SLACK: Duration = Duration::from_millis(1);
/// Webhook POSTs in flight at once (apart from email's `pool_size`, so a slow endpoint does not
/// hold up email).
const WEBHOOKS_IN_FLIGHT: usize = 16;
/// SMS requests in flight at once.
const SMS_IN_FLIGHT: usize = 8;
/// Push messages in flight at once (each goes to every subscription of its customer).
const PUSH_IN_FLIGHT: usize = 8;

/// One channel's share of the sending: its own sends in flight and, when capped, its rate.
struct Lane {
    in_flight: Arc<tokio::sync::Semaphore>,
    /// One start per interval on average.
    interval: Option<Duration>,
    next_slot: Instant,
}

impl Lane {
    fn new(in_flight: usize, per_second: Option<u32>) -> Self {
        Self {
            in_flight: Arc::new(tokio::sync::Semaphore::new(in_flight.max(1))),
            interval: per_second.map(|r| Duration::from_secs_f64(1.0 / f64::from(r.max(1)))),
            next_slot: Instant::now(),
        }
    }

    /// Waits for a free send and the rate cap's next slot; `None` when the lane is closed. Sleeps
    /// only when more than a millisecond ahead of the cap: a timer rounds up to the next
    /// millisecond, so a sleep for less would cap sends at ~1,000/s whatever the configured rate.
    async fn start(&mut self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let permit = self.in_flight.clone().acquire_owned().await.ok()?;
        if let Some(interval) = self.interval {
            let now = Instant::now();
            let slot = self.next_slot.max(now);
            self.next_slot = slot + interval;
            if slot > now + RATE_SLACK {
                tokio::time::sleep_until(slot.into()).await;
            }
        }
        Some(permit)
    }
}

/// What sending one delivery needs from the store.
enum Loaded {
    Digest {
        user: User,
        digest: DigestRecord,
        vouchers: Vec<Arc<Voucher>>,
    },
    Code {
        user: User,
        campaign: Arc<Campaign>,
    },
    Alert(Notification),
    Requested(crate::domain::code_request::CodeRequest),
    /// An account email to `user`.
    Account(User),
    /// A phone code, for the challenge the user has open.
    PhoneCode(User, PhoneChallenge),
}

/// Vouchers read for a claimed batch: digests of one batch list many of the same vouchers.
type VoucherCache = HashMap<Uuid, Option<Arc<Voucher>>>;

/// Reads what `d` needs; a permanent failure when what it names is gone.
fn load(
    s: &Store,
    d: &Delivery,
    cache: &mut VoucherCache,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Result<Loaded, SendError>, StoreError> {
    let gone = |what: &str| {
        Ok(Err(SendError::permanent(format!(
            "{what} no longer exists"
        ))))
    };
    match &d.payload {
        Payload::Digest {
            user_id,
            local_date,
            ..
        } => {
            let Some(user) = s.users().get(*user_id)? else {
                return gone("the user");
            };
            let Some(digest) = s.digests().get(user.id, *local_date)? else {
                return gone("the digest");
            };
            let mut vouchers = Vec::with_capacity(digest.voucher_ids.len());
            for id in &digest.voucher_ids {
                let v = match cache.get(id) {
                    Some(v) => v.clone(),
                    None => {
                        let v = s.vouchers().get(*id)?.map(Arc::new);
                        cache.insert(*id, v.clone());
                        v
                    }
                };
                vouchers.extend(v);
            }
            Ok(Ok(Loaded::Digest {
                user,
                digest,
                vouchers,
            }))
        }
        Payload::Code {
            user_id,
            campaign_id,
            ..
        } => {
            let Some(user) = s.users().get(*user_id)? else {
                return gone("the customer");
            };
            let Some(campaign) = s.campaigns().shared(*campaign_id) else {
                return gone("the campaign");
            };
            Ok(Ok(Loaded::Code { user, campaign }))
        }
        Payload::Alert { notification_id } => match s.notifications().get(*notification_id)? {
            Some(n) => Ok(Ok(Loaded::Alert(n))),
            None => gone("the notification"),
        },
        Payload::Requested { request_id, .. } => match s.code_requests().get(*request_id)? {
            Some(r) => Ok(Ok(Loaded::Requested(r))),
            None => gone("the code request"),
        },
        // A sign-up's link goes to the account it will make (gone: ended or expired meanwhile).
        Payload::Account { user_id, .. } => match s.users().get(*user_id)? {
            Some(u) => Ok(Ok(Loaded::Account(u))),
            None => match s.signups().get(*user_id)? {
                Some(signup) => Ok(Ok(Loaded::Account(signup.user))),
                None => gone("the user"),
            },
        },
        Payload::PhoneCode {
            user_id,
            challenge_id,
        } => {
            let Some(user) = s.users().get(*user_id)? else {
                return gone("the user");
            };
            // Only the challenge the user has open now: a newer code supersedes this one.
            match user.phone_challenge.clone() {
                Some(c) if c.id == *challenge_id && c.is_open(now) => {
                    Ok(Ok(Loaded::PhoneCode(user, c)))
                }
                _ => gone("the open code"),
            }
        }
    }
}

/// Claims and sends until the actor stops (dropping this future). Sends run on `sends`.
pub async fn run(out: Arc<Outbound>, wake: Arc<Notify>, sends: tokio::runtime::Handle) {
    let now = out.clock.now();
    match out.store.write(move |s| s.deliveries().resume(now)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            resumed = n,
            "outbox: deliveries interrupted by the last stop are due again"
        ),
        Err(e) => tracing::error!(error = %e, "outbox: resuming failed"),
    }
    let mut email = Lane::new(out.pool_size, Some(out.per_second));
    let mut webhook = Lane::new(WEBHOOKS_IN_FLIGHT, None);
    let mut sms = Lane::new(SMS_IN_FLIGHT, Some(out.sms_per_second));
    let mut push = Lane::new(PUSH_IN_FLIGHT, Some(out.push_per_second));
    loop {
        let now = out.clock.now();
        let lease =
            chrono::Duration::from_std(LEASE).unwrap_or_else(|_| chrono::Duration::minutes(5));
        let limit = out.pool_size * 4;
        let claimed = match out
            .store
            .write_unflushed(move |s| s.deliveries().claim_due(now, now + lease, limit))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "outbox: claiming failed");
                Vec::new()
            }
        };
        // Nothing leaves before the writes that made these entries (and this claim) are on
        // disk: a crash must not forget a message that was sent. One flush for the batch.
        let claimed = if claimed.is_empty() {
            claimed
        } else {
            match out.store.barrier().await {
                Ok(()) => claimed,
                Err(e) => {
                    tracing::error!(error = %e, "outbox: the claimed batch is not durable; not sending it");
                    Vec::new()
                }
            }
        };
        let full = claimed.len() == limit;
        // Everything the batch needs, in one store hop.
        let loaded = if claimed.is_empty() {
            Vec::new()
        } else {
            let now = out.clock.now();
            let read = out
                .store
                .run(move |s| {
                    let mut cache = VoucherCache::new();
                    claimed
                        .into_iter()
                        .map(|d| {
                            let l = load(s, &d, &mut cache, now).unwrap_or_else(|e| Err(e.into()));
                            Ok((d, l))
                        })
                        .collect::<Result<Vec<_>, StoreError>>()
                })
                .await;
            match read {
                Ok(l) => l,
                Err(e) => {
                    // The claims lapse and are retried after their lease.
                    tracing::error!(error = %e, "outbox: reading claimed deliveries failed");
                    Vec::new()
                }
            }
        };
        for (d, l) in loaded {
            let lane = match d.channel {
                Channel::Email => &mut email,
                Channel::Webhook => &mut webhook,
                Channel::Sms => &mut sms,
                Channel::Push => &mut push,
            };
            let Some(permit) = lane.start().await else {
                return;
            };
            let out = out.clone();
            sends.spawn(async move {
                deliver(&out, d, l).await;
                drop(permit);
            });
        }
        if full {
            continue;
        }
        let wait = match out.store.run(|s| s.deliveries().next_due()).await {
            Ok(Some(at)) => (at - out.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), MAX_SLEEP),
            _ => MAX_SLEEP,
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends one claimed delivery and settles it. A claim whose lease is about to lapse (it waited
/// for the rate cap) is not started: after the lease another attempt may claim it, and two sends
/// of one message are worse than a later one.
async fn deliver(out: &Outbound, d: Delivery, loaded: Result<Loaded, SendError>) {
    let channel = d.channel.as_str();
    let margin = chrono::Duration::from_std(out.send_timeout + LEASE_MARGIN)
        .unwrap_or_else(|_| chrono::Duration::minutes(1));
    if out.clock.now() + margin >= d.next_attempt_at {
        tracing::warn!(delivery = %d.id, "lease about to lapse before the send started; left for the next claim");
        metrics::counter!("voucherd_deliveries_total", "channel" => channel, "result" => "lease_lapsed")
            .increment(1);
        return;
    }
    let sent = match loaded {
        Ok(l) => send(out, &d, l).await,
        Err(e) => Err(e),
    };
    let now = out.clock.now();
    let attempt = match &sent {
        Ok(()) => Attempt::Sent,
        Err(e) => {
            let retry = !e.permanent && d.attempts < out.max_attempts;
            let jitter = 0.5 + rand::random::<f64>() * 0.5;
            Attempt::Failed {
                error: e.message.clone(),
                retry_at: retry.then(|| now + out.backoff.delay(d.attempts, jitter)),
            }
        }
    };
    let settled = {
        let claimed = d.clone();
        let attempt = attempt.clone();
        out.store
            .write(move |s| s.deliveries().settle(&claimed, &attempt, now))
            .await
    };
    match settled {
        Ok(stored) => {
            let result = match stored.status {
                DeliveryStatus::Sent => "sent",
                DeliveryStatus::Dead => "dead",
                _ => "failed",
            };
            metrics::counter!("voucherd_deliveries_total", "channel" => channel, "result" => result)
                .increment(1);
            if stored.status == DeliveryStatus::Dead {
                tracing::warn!(delivery = %d.id, error = ?stored.last_error, "delivery dead-lettered");
                alert(out, &stored).await;
            } else if let Err(e) = &sent {
                tracing::info!(delivery = %d.id, attempt = d.attempts, error = %e, "delivery failed; will retry");
            }
        }
        // Erased with its user while in flight: nothing to record, and nothing kept.
        Err(crate::store::StoreError::NotFound) => {
            if sent.is_ok() && d.channel == Channel::Email {
                out.mailer.discard(&d.id.to_string());
            }
        }
        Err(crate::store::StoreError::StaleLease) => {
            tracing::warn!(delivery = %d.id, "the lease lapsed during the send; the newer claim decides");
        }
        Err(e) => {
            tracing::error!(delivery = %d.id, error = %e, "settling a delivery failed; it is retried after its lease")
        }
    }
}

/// One `delivery_failing` notification an hour at most, however many messages die; emailed to
/// the admins unless the dead message was itself an alert to them.
async fn alert(out: &Outbound, d: &Delivery) {
    {
        let Ok(mut last) = out.last_alert.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(3600)) {
            return;
        }
        *last = Some(Instant::now());
    }
    let n = Notification::new(
        NotificationKind::DeliveryFailing,
        &d.id.to_string(),
        format!(
            "{} delivery {} dead after {} attempts: {}",
            d.channel.as_str(),
            d.id,
            d.attempts,
            d.last_error.as_deref().unwrap_or("unknown error")
        ),
        out.clock.now(),
    );
    let email = !out.admin_emails.is_empty() && !matches!(d.payload, Payload::Alert { .. });
    if let Err(e) = out
        .store
        .write(move |s| s.notifications().raise(&n, email))
        .await
    {
        tracing::error!(error = %e, "storing a delivery_failing notification failed");
    }
}

/// Renders and sends one delivery.
async fn send(out: &Outbound, d: &Delivery, loaded: Loaded) -> Result<(), SendError> {
    match loaded {
        Loaded::Digest {
            user,
            digest,
            vouchers,
        } => {
            let lines: Vec<VoucherLine> =
                vouchers.iter().map(|v| VoucherLine::of(v, &user)).collect();
            let unsubscribe = format!(
                "{}/unsubscribe/{}",
                out.public_url,
                out.signer.unsubscribe_token(user.id)
            );
            let email = digest_email(
                &out.templates,
                &digest,
                &user,
                &lines,
                &unsubscribe,
                &out.public_url,
                &out.host,
            )?;
            let message = email.build(&out.from)?;
            out.mailer.send(message, &d.id.to_string()).await
        }
        Loaded::Code { user, campaign } => {
            let Payload::Code {
                code,
                distribution_id,
                ..
            } = &d.payload
            else {
                return Err(SendError::permanent("not a code message"));
            };
            match (d.channel, d.webhook.as_deref()) {
                (Channel::Email, _) => {
                    let unsubscribe = format!(
                        "{}/unsubscribe/{}",
                        out.public_url,
                        out.signer.unsubscribe_token(user.id)
                    );
                    let email = code_email(
                        &out.templates,
                        &campaign,
                        code,
                        user.email.as_str(),
                        format!("<code-{}@{}>", d.id, out.host),
                        &out.public_url,
                        &unsubscribe,
                    )?;
                    out.mailer
                        .send(email.build(&out.from)?, &d.id.to_string())
                        .await
                }
                (Channel::Webhook, Some(webhook)) => {
                    let body = serde_json::to_vec(&serde_json::json!({
                        "event": "code.assigned",
                        "delivery_id": d.id,
                        "distribution_id": distribution_id,
                        "campaign": {"id": campaign.id, "name": campaign.name},
                        "customer": {
                            "id": user.id,
                            "email": user.email.as_str(),
                            "phone": user.verified_phone(),
                        },
                        "code": code,
                        "valid_until": campaign.ends_at,
                    }))?;
                    out.webhooks.post(webhook, body, &d.id.to_string()).await
                }
                (Channel::Webhook, None) => Err(SendError::permanent("no webhook named")),
                (Channel::Sms, _) => {
                    let Some(sms) = out.sms.as_ref() else {
                        return Err(SendError::permanent("[delivery.sms] url is not configured"));
                    };
                    let Some(phone) = user.verified_phone() else {
                        return Err(SendError::permanent(
                            "the customer has no confirmed phone number",
                        ));
                    };
                    let body = code_sms(&out.templates, &campaign, code, &out.public_url)?;
                    sms.send(phone.as_str(), &body, &d.id.to_string()).await
                }
                (Channel::Push, _) => {
                    let text = code_sms(&out.templates, &campaign, code, &out.public_url)?;
                    let payload = serde_json::json!({
                        "title": campaign.name, "body": text, "code": code,
                        "campaign_id": campaign.id,
                    });
                    push_to_all(out, user.id, &payload).await
                }
            }
        }
        Loaded::Requested(r) if d.channel == Channel::Push => {
            let Some(code) = r.code.as_deref() else {
                return Err(SendError::permanent("the request has no code"));
            };
            let text = requested_sms(&out.templates, &r.product, code)?;
            let payload = serde_json::json!({
                "title": r.product, "body": text, "code": code, "request_id": r.id,
            });
            push_to_all(out, r.customer, &payload).await
        }
        Loaded::Requested(r) => {
            let Some(sms) = out.sms.as_ref() else {
                return Err(SendError::permanent("[delivery.sms] url is not configured"));
            };
            let (Some(phone), Some(code)) = (r.phone.as_deref(), r.code.as_deref()) else {
                return Err(SendError::permanent(
                    "the request has no phone number or no code",
                ));
            };
            let body = requested_sms(&out.templates, &r.product, code)?;
            sms.send(phone, &body, &d.id.to_string()).await
        }
        Loaded::Account(user) => {
            let Payload::Account { mail, .. } = &d.payload else {
                return Err(SendError::permanent("not an account email"));
            };
            let message_id = format!("<account-{}@{}>", d.id, out.host);
            let email = match mail {
                AccountMail::ConfirmEmail { email, expires_at } => {
                    let token =
                        out.signer
                            .confirm_email_token(user.id, email, expires_at.timestamp());
                    let url = format!("{}/verify-email/{token}", out.public_url);
                    confirm_email(
                        &out.templates,
                        email,
                        &url,
                        *expires_at,
                        message_id,
                        &out.public_url,
                    )?
                }
                AccountMail::AlreadyRegistered => already_registered_email(
                    &out.templates,
                    user.email.as_str(),
                    message_id,
                    &out.public_url,
                )?,
            };
            out.mailer
                .send(email.build(&out.from)?, &d.id.to_string())
                .await
        }
        Loaded::PhoneCode(user, challenge) => {
            let Some(sms) = out.sms.as_ref() else {
                return Err(SendError::permanent("[delivery.sms] url is not configured"));
            };
            let code = out
                .signer
                .phone_code(challenge.id, user.id, challenge.phone.as_str());
            let minutes = (challenge.expires_at - out.clock.now())
                .num_minutes()
                .max(1);
            let body = phone_code_sms(&out.templates, &code, minutes)?;
            sms.send(challenge.phone.as_str(), &body, &d.id.to_string())
                .await
        }
        Loaded::Alert(n) => {
            if out.admin_emails.is_empty() {
                return Err(SendError::permanent(
                    "no [notify] admin_emails are configured",
                ));
            }
            let email = alert_email(
                &out.templates,
                &n,
                &out.admin_emails.join(", "),
                format!("<alert-{}@{}>", d.id, out.host),
                &out.public_url,
            )?;
            out.mailer
                .send(email.build(&out.from)?, &d.id.to_string())
                .await
        }
    }
}

/// Sends `payload` to every push subscription of `user`: delivered when at least one push service
/// took it; a subscription its service calls gone (404, 410) is removed; with none left (or none
/// at all) the message fails for good.
async fn push_to_all(
    out: &Outbound,
    user: uuid::Uuid,
    payload: &serde_json::Value,
) -> Result<(), SendError> {
    use crate::delivery::push::PushError;
    let subs = out
        .store
        .run(move |s| s.push_subscriptions().of_user(user))
        .await?;
    if subs.is_empty() {
        return Err(SendError::permanent(
            "the customer has no push subscription",
        ));
    }
    let body = serde_json::to_vec(payload)?;
    let (mut delivered, mut error) = (false, None);
    for sub in subs {
        match out.push.send(&sub, &body).await {
            Ok(()) => delivered = true,
            Err(PushError::Gone) => {
                let id = sub.id;
                tracing::info!(%user, subscription = %id, "push subscription gone; removed");
                if let Err(e) = out
                    .store
                    .write(move |s| s.push_subscriptions().remove(user, id))
                    .await
                {
                    tracing::warn!(error = %e, "removing a gone push subscription failed");
                }
                error.get_or_insert(SendError::permanent("every push subscription is gone"));
            }
            Err(PushError::Failed(e)) => {
                // A transient failure outranks "gone": the message is tried again.
                if !e.permanent || error.is_none() {
                    error = Some(e);
                }
            }
        }
    }
    match (delivered, error) {
        (true, _) => Ok(()),
        (false, Some(e)) => Err(e),
        (false, None) => Err(SendError::permanent("no push subscription took it")),
    }
}
