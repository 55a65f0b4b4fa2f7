//! Operations endpoints: liveness, readiness, Prometheus metrics.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

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

/// Prometheus text exposition.
#[utoipa::path(tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
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
