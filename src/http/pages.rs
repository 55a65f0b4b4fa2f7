//! What the browser pages share: the front door (`GET /` → the console), the helpers script
//! (`/ui.js`) and the stylesheet (`/ui.css`), and how every page asset is served — with a strict
//! Content-Security-Policy (same-origin scripts and styles only, no inline code, images from the
//! server or the scripts' blobs, no framing) and the usual hardening headers. Nothing is fetched
//! from anywhere else. The pages themselves are `admin` (the console) and `me` (customers).

use actix_web::{HttpResponse, get};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(root).service(script).service(style);
}

const SCRIPT: &str = include_str!("ui.js");
const STYLE: &str = include_str!("ui.css");

/// What a page may load and do.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' blob:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// A page asset with the policy and hardening headers.
pub fn asset(content_type: &str, body: &'static str) -> HttpResponse {
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
#[utoipa::path(tag = "pages", responses((status = 303, description = "to the console at /admin")))]
#[get("/")]
async fn root() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", "/admin"))
        .finish()
}

/// The helpers the pages' scripts share.
#[utoipa::path(tag = "pages", responses((status = 200, description = "the pages' shared script", content_type = "text/javascript")))]
#[get("/ui.js")]
async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The pages' stylesheet.
#[utoipa::path(tag = "pages", responses((status = 200, description = "the pages' stylesheet", content_type = "text/css")))]
#[get("/ui.css")]
async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}
