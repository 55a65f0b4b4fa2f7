//! `/me`: the customer's page — sign up or in; the wallet, with a QR code per code for the till;
//! the retailers and categories they follow and their vouchers; timezone, digest hour and
//! frequency, phone and the marketing email choice; deleting the account. Links in emails lead
//! here (`/me#wallet`, `/me#follows`, `/me#vouchers`). Like the console, one page and a script
//! that work through the API with the token signing in gives; served as every page is.

use actix_web::{HttpResponse, get};

use super::views::asset;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(page).service(script);
}

const PAGE: &str = include_str!("me/index.html");
const SCRIPT: &str = include_str!("me/app.js");

/// The customer's page (anyone may load it; it signs them up or in).
#[utoipa::path(tag = "pages", responses((status = 200, description = "the customer's page", content_type = "text/html")))]
#[get("/me")]
async fn page() -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

/// The customer page's script.
#[utoipa::path(tag = "pages", responses((status = 200, description = "the customer page's script", content_type = "text/javascript")))]
#[get("/me/app.js")]
async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}
