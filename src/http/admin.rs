//! `/admin`: the dashboard page for managers — campaigns with their charts, network health,
//! deliveries, code requests and notifications; ending a campaign, pulling a network. One HTML
//! page, a script and a stylesheet, embedded in the binary (`src/http/admin/`); the script signs
//! in with `POST /api/v1/auth/tokens` and reads everything through the API with that token (kept
//! in the tab's session storage), so the page itself holds no data and needs no session.
//!
//! Served with a strict Content-Security-Policy (same-origin scripts and styles only, no inline
//! code, images from the server or the script's blobs, no framing) and the usual hardening
//! headers. Nothing is fetched from anywhere else.

use actix_web::{HttpResponse, get};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(root)
        .service(page)
        .service(script)
        .service(style);
}

const PAGE: &str = include_str!("admin/index.html");
const SCRIPT: &str = include_str!("admin/app.js");
const STYLE: &str = include_str!("admin/app.css");

/// What the page may load and do.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"))
        .insert_header(("Cross-Origin-Resource-Policy", "same-origin"))
        .insert_header((
            "Permissions-Policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

/// The server's front door: to the console.
#[utoipa::path(tag = "admin", responses((status = 303, description = "to the console at /admin")))]
#[get("/")]
async fn root() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", "/admin"))
        .finish()
}

/// The dashboard page (anyone may load it; what it shows needs a manager's sign-in).
#[utoipa::path(tag = "admin", responses((status = 200, description = "the dashboard page", content_type = "text/html")))]
#[get("/admin")]
async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

/// The dashboard's script.
#[utoipa::path(tag = "admin", responses((status = 200, description = "the dashboard's script", content_type = "text/javascript")))]
#[get("/admin/app.js")]
async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The dashboard's stylesheet.
#[utoipa::path(tag = "admin", responses((status = 200, description = "the dashboard's stylesheet", content_type = "text/css")))]
#[get("/admin/app.css")]
async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}
