//! `Idempotency-Key` on the creating POSTs ([`ROUTES`]), with Stripe's semantics: the first
//! answer (status and body) is remembered for 24 hours and replayed to any retry with the same key
//! (marked `Idempotent-Replayed: true`); the same key with another request is 422; two requests
//! with one key at once run once (the second waits for the first's answer). Keys are scoped to the
//! caller (their user, or the API key). Answers worth retrying (429, 5xx) are not remembered.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpResponse, ResponseError, web};
use dashmap::DashMap;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::AppState;
use super::error::ApiError;
use crate::store::idempotency::Remembered;

/// Path templates of the creating POSTs that take an `Idempotency-Key`.
pub const ROUTES: &[&str] = &[
    "/api/v1/campaigns/{id}/claims",
    "/api/v1/campaigns/{id}/distributions",
    "/api/v1/code-requests",
    "/api/v1/orders",
    "/api/v1/redemptions",
    "/api/v1/redemptions/{id}/rollback",
];

pub const HEADER: &str = "idempotency-key";
/// How long a request waits for another one running under its key.
const WAIT: Duration = Duration::from_secs(10);

/// Requests running under a key now, so a second one waits instead of running; and the keys each
/// caller used today (memory only), so one caller cannot fill the store with remembered answers.
#[derive(Default)]
pub struct InFlight {
    running: DashMap<[u8; 32], Arc<Notify>>,
    /// Keyed requests per caller on `day`.
    used: DashMap<uuid::Uuid, u32>,
    day: std::sync::atomic::AtomicI32,
}

impl InFlight {
    /// Counts a keyed request of `scope` today: false past `per_day`. A retry of a remembered
    /// key counts too (it is a keyed request), so the bound holds for any mix.
    fn new_key_allowed(
        &self,
        scope: uuid::Uuid,
        now: chrono::DateTime<chrono::Utc>,
        per_day: u32,
    ) -> bool {
        use chrono::Datelike;
        use std::sync::atomic::Ordering;
        let today = now.num_days_from_ce();
        // A new day: yesterday's counts go (the map holds today's callers only).
        if self.day.swap(today, Ordering::AcqRel) != today {
            self.used.clear();
        }
        let mut count = self.used.entry(scope).or_insert(0);
        if *count >= per_day {
            return false;
        }
        *count += 1;
        true
    }
}

fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

/// The middleware (`actix_web::middleware::from_fn`).
pub async fn idempotent(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let keyed = req.method() == Method::POST && ROUTES.iter().any(|t| matches(t, req.path()));
    let given = req.headers().get(HEADER).cloned();
    let (Some(given), true) = (given, keyed) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let in_flight = req.app_data::<web::Data<InFlight>>().cloned();
    let (Some(state), Some(in_flight)) = (state, in_flight) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let given = match given.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_owned()
        }
        _ => {
            let e =
                ApiError::BadRequest("Idempotency-Key: 1 to 255 visible ASCII characters".into());
            return Ok(req.into_response(e.error_response()));
        }
    };
    // Scoped to whoever asks; an unknown token is left to authentication (401).
    let scope = super::auth::presented_hash(req.request())
        .and_then(|h| state.store.tokens().lookup(&h))
        .map(|m| m.user_id.unwrap_or(m.id));
    let Some(scope) = scope else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let body = req.extract::<Bytes>().await?;
    let per_day = state.settings.rate_limit.idempotency_keys_per_day;
    if !in_flight.new_key_allowed(scope, state.clock.now(), per_day) {
        let e = ApiError::Throttled(format!(
            "Idempotency-Key: at most {per_day} keys a day; send the request without one"
        ));
        return Ok(req.into_response(e.error_response()));
    }
    let key: [u8; 32] = Sha256::new()
        .chain_update(scope.as_bytes())
        .chain_update(given.as_bytes())
        .finalize()
        .into();
    let request: [u8; 32] = Sha256::new()
        .chain_update(req.method().as_str())
        .chain_update([0])
        .chain_update(req.path())
        .chain_update([0])
        .chain_update(&body)
        .finalize()
        .into();
    loop {
        let now = state.clock.now();
        let remembered = state
            .store
            .run(move |s| s.idempotency().get(&key, now))
            .await;
        match remembered {
            Err(e) => return Ok(req.into_response(ApiError::from(e).error_response())),
            Ok(Some(r)) if r.request != request => {
                let e =
                    ApiError::Invalid("Idempotency-Key: already used for another request".into());
                return Ok(req.into_response(e.error_response()));
            }
            Ok(Some(r)) => return Ok(req.into_response(replay(&r))),
            Ok(None) => {}
        }
        let notify = Arc::new(Notify::new());
        let running = match in_flight.running.entry(key) {
            dashmap::mapref::entry::Entry::Vacant(v) => {
                v.insert(notify.clone());
                Running {
                    in_flight: in_flight.clone(),
                    key,
                    notify,
                }
            }
            dashmap::mapref::entry::Entry::Occupied(o) => {
                let theirs = o.get().clone();
                // Registered while the entry is held: the runner removes it (which needs the
                // entry) before it notifies, so the wake-up cannot be missed.
                let notified = theirs.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                drop(o);
                if tokio::time::timeout(WAIT, notified).await.is_err() {
                    let e = ApiError::Conflict(
                        "a request with this Idempotency-Key is still running".into(),
                    );
                    return Ok(req.into_response(e.error_response()));
                }
                continue;
            }
        };
        // A runner that finished between the read above and taking the slot remembered its
        // answer before it let the slot go: read again now that the slot is ours.
        let again = state
            .store
            .run(move |s| s.idempotency().get(&key, now))
            .await;
        if let Ok(Some(r)) = again {
            drop(running);
            return Ok(if r.request == request {
                req.into_response(replay(&r))
            } else {
                let e =
                    ApiError::Invalid("Idempotency-Key: already used for another request".into());
                req.into_response(e.error_response())
            });
        }
        req.set_payload(actix_web::dev::Payload::from(body.clone()));
        // The work runs as a task of its own: a client that disconnects drops this future, not
        // the work, which completes, is remembered, and only then lets the key go (the guard).
        // A retry then gets the remembered answer: the work runs once either way.
        let work = actix_web::rt::spawn(async move {
            let _running = running;
            run_and_remember(&state, req, next, key, request).await
        });
        return work
            .await
            .map_err(|_| ApiError::internal("a keyed request's task failed").into())
            .and_then(|answered| answered);
    }
}

/// A key's place among the requests running now. Dropped — when its work is done and
/// remembered, or when anything returns early — it lets the key go and wakes those waiting on it.
struct Running {
    in_flight: web::Data<InFlight>,
    key: [u8; 32],
    notify: Arc<Notify>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.in_flight.running.remove(&self.key);
        self.notify.notify_waiters();
    }
}

async fn run_and_remember(
    state: &AppState,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    key: [u8; 32],
    request: [u8; 32],
) -> Result<ServiceResponse<BoxBody>, Error> {
    let res = next.call(req).await?;
    let status = res.status();
    let (req, res) = res.into_parts();
    let (head, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|_| ApiError::internal("reading an answer to remember"))?;
    // Answers worth retrying, and answers that created nothing for anyone (an unknown
    // resource, a refused caller), are not kept: a client cannot fill the disk with them.
    let worth_remembering = !status.is_server_error()
        && !matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::NOT_FOUND
                | StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
        );
    if worth_remembering {
        let answer = Remembered {
            v: 1,
            request,
            status: status.as_u16(),
            content_type: head
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_owned(),
            body: bytes.to_vec(),
            created_at: state.clock.now(),
        };
        // The operation is done and durable; if remembering fails, the caller still gets its
        // answer (a retry would then run again, as without a key).
        if let Err(e) = state
            .store
            .write(move |s| s.idempotency().remember(&key, &answer))
            .await
        {
            tracing::warn!(error = %e, "remembering an idempotent answer failed");
        }
    }
    let res = head.set_body(BoxBody::new(bytes));
    Ok(ServiceResponse::new(req, res))
}

fn replay(r: &Remembered) -> HttpResponse {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    if let Ok(ct) = HeaderValue::from_str(&r.content_type) {
        res.insert_header((CONTENT_TYPE, ct));
    }
    res.insert_header((
        HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    ));
    res.body(r.body.clone())
}

#[cfg(test)]
mod tests {
    #[test]
    fn keyed_routes_are_matched_by_template() {
        assert!(super::matches(
            "/api/v1/campaigns/{id}/claims",
            "/api/v1/campaigns/0190b3f2-0000-7000-8000-000000000000/claims"
        ));
        assert!(!super::matches(
            "/api/v1/campaigns/{id}/claims",
            "/api/v1/campaigns//claims"
        ));
        assert!(!super::matches("/api/v1/orders", "/api/v1/orders/x"));
    }
}
