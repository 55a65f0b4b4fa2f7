//! Cross-cutting request handling: the request id header, HTTP metrics, turning a panicking
//! handler into a 500 problem instead of a dropped connection and a dead worker, and answering a
//! body actix itself refused (over the size limit, cut short) as a problem too.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
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
    let method = req.method().to_string();
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
    let status = res.status().as_u16().to_string();
    metrics::counter!("voucherd_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("voucherd_http_request_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(res)
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
    match e.as_response_error().status_code().as_u16() {
        413 => Some(ApiError::PayloadTooLarge { limit }),
        400 => Some(ApiError::BadRequest(format!("unreadable request: {e}"))),
        _ => None,
    }
}
