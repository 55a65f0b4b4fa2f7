//! `/admin`: the console for managers (admins see more) — campaigns with their rules, budgets,
//! codes, distributions, reports and charts; the till; code look-up; network health; deliveries
//! and notifications. One HTML page and a script, embedded in the binary (`src/http/admin/`); the
//! script signs in with `POST /api/v1/auth/tokens` and does everything through the API with that
//! token (kept in the tab's session storage), so the page itself holds no data and needs no
//! session. Served as every page is (`views::asset`: strict policy, nothing from elsewhere).

use actix_web::{HttpResponse, get};

use super::views::asset;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(page).service(script);
}

const PAGE: &str = include_str!("admin/index.html");
const SCRIPT: &str = include_str!("admin/app.js");

/// The console page (anyone may load it; what it shows needs a manager's sign-in).
#[utoipa::path(tag = "pages", responses((status = 200, description = "the console page", content_type = "text/html")))]
#[get("/admin")]
async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

/// The console's script.
#[utoipa::path(tag = "pages", responses((status = 200, description = "the console's script", content_type = "text/javascript")))]
#[get("/admin/app.js")]
async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}
