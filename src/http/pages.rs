//! What the browser pages share: the front door (`GET /` → the console), the helpers script
//! (`/ui.js`) and the stylesheet (`/ui.css`). Every page asset is served by `views::asset` with a
//! strict Content-Security-Policy (same-origin scripts and styles only, no inline code, images
//! from the server or the scripts' blobs, no framing) and the usual hardening headers. Nothing is
//! fetched from anywhere else. The pages themselves are `admin` (the console) and `me`
//! (customers).

use actix_web::{HttpResponse, get};

use super::views::asset;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(root).service(script).service(style);
}

const SCRIPT: &str = include_str!("ui.js");
const STYLE: &str = include_str!("ui.css");

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
