//! `/api/v1/admin/settings`: the settings the server runs with (admin), as the configuration file
//! `voucherd check-config` prints — defaults, file and environment merged, every secret (and the
//! SMTP password in its URL) shown as `********`.

use actix_web::{HttpResponse, get, web};

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::auth::Principal;
use crate::domain::user::Role;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(effective);
}

/// The effective settings, secrets masked (admin).
#[utoipa::path(tag = "operations", security(("bearer" = [])), responses((status = 200, description = "the settings as a TOML configuration file, secrets masked", content_type = "application/toml", body = String), (status = 403, body = Problem)))]
#[get("/admin/settings")]
async fn effective(state: web::Data<AppState>, who: Principal) -> Result<HttpResponse, ApiError> {
    who.require(Role::Admin)?;
    Ok(HttpResponse::Ok()
        .content_type("application/toml; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(state.settings.to_masked_toml()))
}
