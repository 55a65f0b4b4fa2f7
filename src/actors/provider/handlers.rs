//! ProviderActor messages and one call to the provider server.

use std::time::Duration;

use actix::{ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::ProviderActor;
use crate::actors::messages::Ping;
use crate::actors::supervise::{ActorPanic, guard};
use crate::domain::code_request::{CodeRequest, RequestChannel, RequestStatus};
use crate::domain::notification::{Notification, NotificationKind};
use crate::store::code_requests::Settled;
use crate::store::{Store, StoreError};

/// Work on this stored request now (a new one, a resumed one, or its next poll).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Submit(pub Uuid);

/// How one call went.
enum Outcome {
    /// Nothing more to do (settled, by this call or before it, or gone).
    Done(Option<Settled>),
    /// Look again after this long (accepted for later, or not ready yet).
    Later(Duration),
    /// The call failed; retry with backoff (no later than `Duration`).
    Error(String, Duration),
}

/// What the provider answers with a code.
#[derive(Debug, Deserialize)]
struct Answer {
    code: Option<String>,
}

/// The most of a provider's answer that is read: a code fits in far less.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// The code of a provider's 200, if it is one: an answer of at most [`MAX_ANSWER_BYTES`] (read
/// no further), JSON `{code}`, the code 1 to 200 characters without control characters (it is
/// shown on pages and sent by SMS).
async fn usable_code(mut res: reqwest::Response) -> Option<String> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    let code = serde_json::from_slice::<Answer>(&body).ok()?.code?;
    crate::domain::bounded_text("code", &code, CodeRequest::MAX_CODE_LEN).ok()
}

impl Handler<Ping> for ProviderActor {
    type Result = Result<(), ActorPanic>;

    fn handle(&mut self, _: Ping, ctx: &mut Context<Self>) -> Self::Result {
        guard(self, ctx, |_, _| ())
    }
}

impl Handler<Submit> for ProviderActor {
    type Result = ();

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) {
        let _ = guard(self, ctx, |act, ctx| {
            // A request already queued waits once (a linear look: the queue is bounded by
            // 16 × concurrency).
            if act.queue.contains(&msg.0) {
                act.drop_one(); // counted once already
            } else {
                act.queue.push_back(msg.0);
            }
            act.pump(ctx);
        });
    }
}

impl ProviderActor {
    /// Starts calls while there is room.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        while self.in_flight < self.settings.concurrency as usize {
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            self.in_flight += 1;
            let call = Call {
                store: self.store.clone(),
                client: self.client.clone(),
                url: self.settings.url.trim_end_matches('/').to_owned(),
                callback_url: self.callback_url.clone(),
                timeout: Duration::from_secs(self.settings.timeout_s),
                poll: Duration::from_secs(self.settings.poll_interval_s),
                give_up: chrono::Duration::seconds(self.settings.give_up_after_s as i64),
                now: self.clock.now(),
                email_alerts: self.email_alerts,
            };
            ctx.spawn(async move { call.run(id).await }.into_actor(self).map(
                move |outcome, act, ctx| {
                    act.in_flight -= 1;
                    act.drop_one();
                    act.settle(id, outcome, ctx);
                    act.pump(ctx);
                },
            ));
        }
    }

    fn settle(&mut self, id: Uuid, outcome: Outcome, ctx: &mut Context<Self>) {
        match outcome {
            Outcome::Done(settled) => {
                self.errors.remove(&id);
                if let Some(Settled::Now(r)) = settled {
                    metrics::counter!("voucherd_code_requests_total", "provider" => self.settings.name.clone(), "result" => status_label(r.status)).increment(1);
                    self.settlements.settled(id);
                    if r.channel != RequestChannel::Web || r.status == RequestStatus::Failed {
                        self.outbox_wake.notify_one();
                    }
                }
            }
            Outcome::Later(after) => {
                self.errors.remove(&id);
                ctx.run_later(after, move |act, ctx| {
                    act.take_one();
                    ctx.notify(Submit(id));
                });
            }
            Outcome::Error(error, limit) => {
                let n = self.errors.entry(id).or_default();
                *n += 1;
                let after = Self::backoff(*n).min(limit);
                tracing::warn!(provider = %self.settings.name, request = %id, attempt = *n, %error, "provider call failed; retrying");
                ctx.run_later(after, move |act, ctx| {
                    act.take_one();
                    ctx.notify(Submit(id));
                });
            }
        }
    }
}

fn status_label(s: RequestStatus) -> &'static str {
    match s {
        RequestStatus::Pending => "pending",
        RequestStatus::Fulfilled => "fulfilled",
        RequestStatus::Failed => "failed",
    }
}

/// One call's inputs (cloned out of the actor).
struct Call {
    store: Store,
    client: reqwest::Client,
    url: String,
    callback_url: String,
    timeout: Duration,
    poll: Duration,
    give_up: chrono::Duration,
    now: DateTime<Utc>,
    email_alerts: bool,
}

impl Call {
    async fn run(&self, id: Uuid) -> Outcome {
        let request = match self.store.run(move |s| s.code_requests().get(id)).await {
            Ok(Some(r)) if r.status == RequestStatus::Pending => r,
            Ok(_) => return Outcome::Done(None),
            Err(e) => return Outcome::Error(e.to_string(), self.poll),
        };
        let deadline = request.created_at + self.give_up;
        let left = (deadline - self.now).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            let why = format!(
                "no code from provider {} within {} s",
                request.provider,
                self.give_up.num_seconds()
            );
            return self.fail(&request, why).await;
        }
        let sent = if request.accepted {
            self.client
                .get(format!("{}/codes/{}", self.url, request.id))
                .timeout(self.timeout)
                .send()
                .await
        } else {
            self.client
                .post(format!("{}/codes", self.url))
                .timeout(self.timeout)
                .json(&serde_json::json!({
                    "request_id": request.id,
                    "product": request.product,
                    "callback_url": self.callback_url,
                }))
                .send()
                .await
        };
        let res = match sent {
            Ok(res) => res,
            Err(e) if e.is_timeout() => {
                return Outcome::Error(
                    format!("no answer within {} s", self.timeout.as_secs()),
                    left,
                );
            }
            Err(e) => return Outcome::Error(e.to_string(), left),
        };
        let status = res.status();
        match status.as_u16() {
            200 => match usable_code(res).await {
                Some(code) => self.fulfil(id, code).await,
                None => Outcome::Error("a 200 without a usable `code`".into(), left),
            },
            202 if !request.accepted => {
                let now = self.now;
                let accepted = self
                    .store
                    .write(move |s| {
                        let Some(mut r) = s.code_requests().get(id)? else {
                            return Ok(());
                        };
                        if r.status == RequestStatus::Pending && !r.accepted {
                            r.accepted = true;
                            r.updated_at = now;
                            s.code_requests().put(&r)?;
                        }
                        Ok(())
                    })
                    .await;
                match accepted {
                    Ok(()) => Outcome::Later(self.poll.min(left)),
                    Err(e) => Outcome::Error(e.to_string(), left),
                }
            }
            202 | 404 if request.accepted => Outcome::Later(self.poll.min(left)),
            408 | 429 => Outcome::Error(format!("the provider answered {status}"), left),
            400..=499 => {
                self.fail(
                    &request,
                    format!("the provider refused the request ({status})"),
                )
                .await
            }
            _ => Outcome::Error(format!("the provider answered {status}"), left),
        }
    }

    async fn fulfil(&self, id: Uuid, code: String) -> Outcome {
        let now = self.now;
        match self
            .store
            .write(move |s| s.code_requests().fulfil(id, &code, now))
            .await
        {
            Ok(settled) => Outcome::Done(Some(settled)),
            Err(StoreError::NotFound) => Outcome::Done(None),
            Err(e) => Outcome::Error(e.to_string(), self.poll),
        }
    }

    /// Fails the request and tells the admins, in one command.
    async fn fail(&self, request: &CodeRequest, why: String) -> Outcome {
        let (id, now, email) = (request.id, self.now, self.email_alerts);
        let n = Notification::new(
            NotificationKind::CodeRequestFailed,
            &request.provider,
            format!("code request {id} for {}: {why}", request.product),
            now,
        );
        let failed = self
            .store
            .write(move |s| {
                let settled = s.code_requests().fail(id, &why, now)?;
                if matches!(settled, Settled::Now(_)) {
                    s.notifications().raise(&n, email)?;
                }
                Ok(settled)
            })
            .await;
        match failed {
            Ok(settled) => Outcome::Done(Some(settled)),
            Err(StoreError::NotFound) => Outcome::Done(None),
            Err(e) => Outcome::Error(e.to_string(), self.poll),
        }
    }
}
