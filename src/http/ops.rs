//! Operations endpoints: liveness, readiness, Prometheus metrics.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub store: bool,
    pub actors: bool,
}

/// Liveness: the process answers.
#[utoipa::path(tag = "operations", responses((status = 200, body = Health)))]
#[get("/healthz")]
async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// Readiness: the store reads and can still write durably, and every actor answers a ping.
#[utoipa::path(tag = "operations", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = !state.store.health().failed()
        && state.store.run(|s| s.meta().schema_version()).await.is_ok();
    let actors = state.actors.alive(Duration::from_secs(2)).await;
    let ready = store && actors;
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        store,
        actors,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition; with `http.metrics_token` set, only for `Authorization: Bearer
/// <that token>` (401 otherwise).
#[utoipa::path(tag = "operations", responses((status = 200, content_type = "text/plain", body = String), (status = 401, body = crate::http::error::Problem)))]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>, req: actix_web::HttpRequest) -> HttpResponse {
    let wanted = state.settings.http.metrics_token.expose();
    if !wanted.is_empty() {
        let given = super::auth::bearer(&req).unwrap_or_default();
        if !crate::security::same_secret(given.as_bytes(), wanted.as_bytes()) {
            return actix_web::ResponseError::error_response(&ApiError::Unauthorized);
        }
    }
    let (users, vouchers) = state
        .store
        .run(|s| Ok((s.users().count()?, s.vouchers().count()?)))
        .await
        .unwrap_or((0, 0));
    ::metrics::gauge!("voucherd_users").set(users as f64);
    ::metrics::gauge!("voucherd_vouchers").set(vouchers as f64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::metrics().render())
}
