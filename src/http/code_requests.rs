//! `/api/v1/code-requests`: a customer asks a voucher-provider server for a code (accepted at once,
//! 202), follows it (`GET …/{id}`, or the Server-Sent Events of `…/{id}/events`), and the
//! provider's callbacks come in at `/api/v1/providers/{name}/callback`, signed with its secret.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::auth::Principal;
use crate::domain::code_request::{CodeRequest, CodeRequestView, RequestChannel, RequestStatus};
use crate::domain::user::Role;
use crate::service::code_requests::{self as use_case, Ask};
use crate::service::customers::acting_for;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create)
        .service(get_one)
        .service(events)
        .service(callback);
}

/// Event streams open at once; more are refused (503).
pub const MAX_STREAMS: usize = 1024;
/// Event streams one caller (a user, or an API key) may hold open at once; more are refused (429),
/// so one client cannot take every place.
pub const MAX_STREAMS_PER_CALLER: usize = 8;
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
static OPEN_STREAMS: AtomicUsize = AtomicUsize::new(0);
/// Streams open per caller (entries removed when they reach zero).
static CALLER_STREAMS: std::sync::LazyLock<dashmap::DashMap<Uuid, usize>> =
    std::sync::LazyLock::new(dashmap::DashMap::new);

/// How the code should reach the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AskedChannel {
    Web,
    Sms,
    Push,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCodeRequest {
    /// A `[[providers]]` entry's name.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9_-]+$")]
    pub provider: String,
    /// What to ask the provider for (1 to 200 characters).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF][^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub product: String,
    /// Where an SMS goes (E.164); the customer's own number when absent.
    #[serde(default, deserialize_with = "super::json::some")]
    #[schema(nullable = false, pattern = "^\\+[1-9][0-9]{1,14}$")]
    pub phone: Option<String>,
    /// `web` (status and events only), `sms` (a text message too) or `push` (a Web Push
    /// notification too, to the customer's push subscriptions).
    pub channel: AskedChannel,
    /// Managers: the customer the code is for.
    #[serde(default, deserialize_with = "super::json::some")]
    #[schema(nullable = false)]
    pub customer: Option<Uuid>,
}

/// Ask a provider for a code: 202 `{id, status: "pending", message}` at once; the code follows
/// on the request (and its events) when the provider gives it. 503 when the provider's queue is
/// full.
#[utoipa::path(tag = "code-requests", security(("bearer" = [])), request_body = NewCodeRequest, responses((status = 202, body = CodeRequestView), (status = 404, description = "no such customer", body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)))]
#[post("/code-requests")]
async fn create(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let customer = acting_for(&state.services, &who, body.customer)?;
    let ask = Ask {
        provider: body.provider,
        product: body.product,
        phone: body.phone,
        channel: match body.channel {
            AskedChannel::Web => RequestChannel::Web,
            AskedChannel::Sms => RequestChannel::Sms,
            AskedChannel::Push => RequestChannel::Push,
        },
        customer,
        by_manager: who.role.includes(Role::Manager),
    };
    let request = use_case::ask(&state.services, ask).await?;
    Ok(HttpResponse::Accepted()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/code-requests/{}", request.id),
        ))
        .json(CodeRequestView::from(&request)))
}

/// The request, if the caller may see it (its customer, or a manager).
async fn visible(state: &AppState, who: &Principal, id: Uuid) -> Result<CodeRequest, ApiError> {
    let found = state.store.run(move |s| s.code_requests().get(id)).await?;
    match found {
        Some(r) if who.role.includes(Role::Manager) || who.user_id == Some(r.customer) => Ok(r),
        _ => Err(ApiError::NotFound),
    }
}

/// A request's status, and its code once it has one (its customer, or a manager).
#[utoipa::path(tag = "code-requests", security(("bearer" = [])), params(("id" = Uuid, Path, description = "request id")), responses((status = 200, body = CodeRequestView), (status = 404, body = Problem)))]
#[get("/code-requests/{id}")]
async fn get_one(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<CodeRequestView>, ApiError> {
    let r = visible(&state, &who, id.into_inner()).await?;
    Ok(web::Json(CodeRequestView::from(&r)))
}

/// Server-Sent Events: one `event: code_request` with the request as JSON once it is fulfilled or
/// failed (at once if it already is), then the stream ends; `: keep-alive` comments meanwhile.
#[utoipa::path(tag = "code-requests", security(("bearer" = [])), params(("id" = Uuid, Path, description = "request id")), responses((status = 200, description = "text/event-stream", content_type = "text/event-stream", body = String), (status = 404, body = Problem)))]
#[get("/code-requests/{id}/events")]
async fn events(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    // Subscribed before the first read, so a settle between the two is not missed.
    let mut settled = state.actors.providers.settlements.subscribe();
    visible(&state, &who, id).await?;
    let slot = StreamSlot::take(who.user_id.unwrap_or(who.token_id))?;
    let store = state.store.clone();
    let stream = async_stream(move |tx| async move {
        let _open = slot;
        loop {
            match store.run(move |s| s.code_requests().get(id)).await {
                Ok(Some(r)) if r.status != RequestStatus::Pending => {
                    let json =
                        serde_json::to_string(&CodeRequestView::from(&r)).unwrap_or_default();
                    let _ = tx
                        .send(format!("event: code_request\ndata: {json}\n\n"))
                        .await;
                    return;
                }
                Ok(Some(_)) => {}
                _ => return,
            }
            // Until something about this request happens (or a keep-alive is due).
            loop {
                match tokio::time::timeout(KEEP_ALIVE, settled.recv()).await {
                    Ok(Ok(settled_id)) if settled_id == id => break,
                    Ok(Ok(_)) => continue,
                    // Missed some: look again.
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => break,
                    Ok(Err(_)) => return,
                    Err(_) => {
                        if tx.send(": keep-alive\n\n".to_owned()).await.is_err() {
                            return; // the client went away
                        }
                    }
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .streaming(stream))
}

/// A place among the open streams, the caller's and everyone's; freed when dropped.
struct StreamSlot(Uuid);

impl StreamSlot {
    /// A place for `caller`: 429 past their own cap, 503 past the server's.
    fn take(caller: Uuid) -> Result<Self, ApiError> {
        {
            let mut mine = CALLER_STREAMS.entry(caller).or_insert(0);
            if *mine >= MAX_STREAMS_PER_CALLER {
                return Err(ApiError::RateLimited { retry_after: 5 });
            }
            *mine += 1;
        }
        // From here on, dropping the slot gives both places back.
        let slot = Self(caller);
        if OPEN_STREAMS.fetch_add(1, Ordering::AcqRel) >= MAX_STREAMS {
            return Err(ApiError::Overloaded);
        }
        Ok(slot)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        OPEN_STREAMS.fetch_sub(1, Ordering::AcqRel);
        CALLER_STREAMS.remove_if_mut(&self.0, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

/// A byte stream fed by a task through a small channel (ends when the task does).
fn async_stream<F, Fut>(
    work: F,
) -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<String>) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    actix_web::rt::spawn(work(tx));
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|s| (Ok(web::Bytes::from(s)), rx))
    })
}

/// What a provider calls back with: a code, or why there will be none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    pub request_id: Uuid,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub code: Option<String>,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub error: Option<String>,
}

/// A provider's answer to an accepted request, signed `X-Signature: sha256=<hex HMAC-SHA256 of
/// the body with the provider's secret>`: 200 with the request as it stands (a repeat changes
/// nothing); 401 a missing or wrong signature; 404 no such provider or request.
#[utoipa::path(tag = "code-requests", params(("name" = String, Path, description = "provider name", pattern = "^[a-z0-9_-]{1,64}$"), ("X-Signature" = String, Header, description = "sha256=<hex HMAC-SHA256 of the body>")), request_body = Callback, responses((status = 200, body = CodeRequestView), (status = 401, body = Problem), (status = 404, body = Problem)))]
#[post("/providers/{name}/callback")]
async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<web::Json<CodeRequestView>, ApiError> {
    let name = name.into_inner();
    let provider = state
        .settings
        .providers
        .iter()
        .find(|p| p.name == name)
        .ok_or(ApiError::NotFound)?;
    let given = req
        .headers()
        .get("x-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !crate::security::verify_body_signature(provider.secret.expose().as_bytes(), &body, given) {
        return Err(ApiError::Unauthorized);
    }
    let cb: Callback = super::json::optional_json::<Option<Callback>>(&req, &body)?
        .ok_or_else(|| ApiError::Invalid("an empty callback".into()))?;
    let answer = match (cb.code, cb.error) {
        (Some(code), None) => Ok(code),
        (None, Some(error)) => Err(error),
        _ => {
            return Err(ApiError::Invalid(
                "give exactly one of `code` or `error`".into(),
            ));
        }
    };
    let settled = use_case::settle(&state.services, &name, cb.request_id, answer).await?;
    Ok(web::Json(CodeRequestView::from(&settled)))
}
