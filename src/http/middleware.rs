//! Cross-cutting request handling: the request id header, HTTP metrics, turning a panicking
//! handler into a 500 problem instead of a dropped connection and a dead worker, answering a
//! body actix itself refused (over the size limit, cut short) as a problem too, and a deadline
//! for every request body (a client trickling or stalling its upload holds nothing for long).

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use dashmap::DashMap;
use futures_util::FutureExt;

use super::error::ApiError;

/// Runs inside `TracingLogger`, which gives each request a span with a `request_id`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = req
        .extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(|id| id.to_string());
    let method = method_label(req.method());
    let limit = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .map_or(0, |s| s.settings.http.body_limit_bytes);
    let res = match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(res) => res.map_err(|e| as_problem(&e, limit).map_or(e, Error::from))?,
        Err(_) => {
            // The request went into the handler; the dispatcher turns this error into the 500
            // problem response (ApiError is a ResponseError).
            tracing::error!("request handler panicked");
            metrics::counter!("voucherd_http_panics_total").increment(1);
            return Err(ApiError::Internal("handler panicked".into()).into());
        }
    };
    // A body refused by an extractor before any handler ran (`web::Bytes`): actix answers it
    // in plain text; the API answers problems.
    let mut res = match res.response().error().and_then(|e| as_problem(e, limit)) {
        Some(problem) => {
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, actix_web::ResponseError::error_response(&problem))
                .map_into_right_body()
        }
        None => res.map_into_left_body(),
    };
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), id);
    }
    harden_pages(res.headers_mut());
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    tracing::Span::current().record("http.route", route.as_str());
    let (requests, seconds) = handles(route, method, res.status().as_u16());
    requests.increment(1);
    seconds.record(started.elapsed().as_secs_f64());
    Ok(res)
}

/// A request's method as a metric label: the standard ones, and `other` for any other token a
/// client sends (so no client can add label values without end).
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

type Handles = (metrics::Counter, metrics::Histogram);

/// The request counter and duration histogram of a (route, method, status), made once and kept
/// (a labelled metric looked up per request clones and hashes its labels each time). Bounded:
/// routes are the app's own patterns or `unmatched`, methods are [`method_label`]s, statuses
/// are three digits.
fn handles(route: String, method: &'static str, status: u16) -> Handles {
    static ALL: OnceLock<DashMap<(String, &'static str, u16), Handles>> = OnceLock::new();
    let all = ALL.get_or_init(DashMap::new);
    if let Some(h) = all.get(&(route.clone(), method, status)) {
        return h.clone();
    }
    let made = (
        metrics::counter!("voucherd_http_requests_total", "method" => method, "route" => route.clone(), "status" => status.to_string()),
        metrics::histogram!("voucherd_http_request_seconds", "method" => method, "route" => route.clone()),
    );
    all.insert((route, method, status), made.clone());
    made
}

/// The span each request runs in, which log lines inside it carry: its id, method and path,
/// the route once matched ([`observe`] records it) and the status. Lighter than
/// tracing-actix-web's default, which also reads the route, the client's address and user agent
/// and formats an OpenTelemetry name for every request before it is handled (~6,600 of the
/// ~115,000 instructions a claim cost; `cargo bench --bench flash_sale` under callgrind).
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        let id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .copied();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.target = %request.path(),
            http.route = tracing::field::Empty,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
            request_id = id.map(tracing::field::display),
        )
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// What every page may not be: framed by another site (clickjacking), sniffed into another type,
/// given a base or plugins. Added to any HTML answer that does not set its own policy (the
/// Swagger UI at `/docs`); pages with their own (the dashboard, the unsubscribe page) keep it.
pub const PAGE_POLICY: &str = "frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

fn harden_pages(headers: &mut actix_web::http::header::HeaderMap) {
    use actix_web::http::header::{
        CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    };
    let html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !html {
        return;
    }
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_POLICY),
        );
    }
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// The problem for an error actix raised about the request body, if it is one (not already an
/// [`ApiError`]).
fn as_problem(e: &Error, limit: usize) -> Option<ApiError> {
    if e.as_error::<ApiError>().is_some() {
        return None;
    }
    if let Some(p) = e.as_error::<actix_web::error::PayloadError>()
        && let Some(timeout) = super::error::timed_out(p)
    {
        return Some(timeout);
    }
    match e.as_response_error().status_code().as_u16() {
        413 => Some(ApiError::PayloadTooLarge { limit }),
        400 => Some(ApiError::BadRequest(format!("unreadable request: {e}"))),
        _ => None,
    }
}

/// A request body that ends in an error once `deadline` passes before it is whole.
struct Deadline {
    inner: actix_web::dev::Payload,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    secs: u64,
    done: bool,
}

impl futures_util::Stream for Deadline {
    type Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        match std::pin::Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(item) => Poll::Ready(item),
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.done = true;
                    metrics::counter!("voucherd_http_body_timeouts_total").increment(1);
                    let secs = self.secs;
                    Poll::Ready(Some(Err(actix_web::error::PayloadError::Io(
                        std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            super::error::BodyTimedOut(secs),
                        ),
                    ))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Gives every request body `[http] body_timeout_s` from the moment its request arrived to be
/// whole; past it the body ends in an error that answers 408 and the connection closes. Without
/// it an upload sent a byte at a time (or not at all) holds its connection, its worker's memory
/// and, for a CSV import, one of the import places, for as long as the client likes.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let secs = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .map_or(60, |s| s.settings.http.body_timeout_s);
    let inner = req.take_payload();
    if matches!(inner, actix_web::dev::Payload::None) {
        // No body (a GET, a claim without one): nothing to wait for.
        return next.call(req).await;
    }
    let deadline = Deadline {
        inner,
        sleep: Box::pin(tokio::time::sleep(std::time::Duration::from_secs(secs))),
        secs,
        done: false,
    };
    req.set_payload(actix_web::dev::Payload::from(
        Box::pin(deadline) as std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>>
    ));
    next.call(req).await
}
