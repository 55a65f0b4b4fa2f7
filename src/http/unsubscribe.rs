//! `/unsubscribe/{token}`: the signed link in every digest. GET shows a page with a button (link
//! scanners must not unsubscribe anyone); POST unsubscribes — the RFC 8058 one-click request mail
//! clients send (`List-Unsubscribe=One-Click`), or the page's button. The same link is in every
//! code email. Unsubscribing switches the user's digests off and opts them out of marketing email
//! (codes sent by distributions); their subscriptions stay, so switching on again restores them.

use actix_web::{HttpResponse, get, post, web};
use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::user::{DigestFrequency, UserChanges};
use crate::service::accounts::{self, TokensAfter};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(page).service(one_click);
}

#[derive(Serialize)]
struct PageContext<'a> {
    state: &'a str,
    email: &'a str,
}

/// The unsubscribe page's Content-Security-Policy.
pub const UNSUBSCRIBE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn html(
    state: &AppState,
    status: actix_web::http::StatusCode,
    which: &str,
    email: &str,
) -> HttpResponse {
    match state.templates.render(
        "unsubscribe.html",
        &PageContext {
            state: which,
            email,
        },
    ) {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            // Nothing but its own inline style and a form posting back to itself.
            .insert_header(("Content-Security-Policy", UNSUBSCRIBE_POLICY))
            .insert_header(("Referrer-Policy", "no-referrer"))
            .body(body),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::internal(e)),
    }
}

/// The user behind a genuine token who still exists.
async fn user_of(state: &AppState, token: &str) -> Result<crate::domain::user::User, ApiError> {
    let id: Uuid = state
        .signer
        .verify_unsubscribe(token)
        .ok_or(ApiError::NotFound)?;
    state
        .store
        .run(move |s| s.users().get(id))
        .await?
        .ok_or(ApiError::NotFound)
}

/// The unsubscribe page: asks to confirm (anyone holding the link).
#[utoipa::path(tag = "digests", params(("token" = String, Path, description = "signed per-user token from the digest", pattern = "^[0-9a-f]{32}\\.[0-9a-f]{64}$")), responses((status = 200, description = "an HTML page with an unsubscribe button", content_type = "text/html"), (status = 404, description = "altered or unknown link", content_type = "text/html")))]
#[get("/unsubscribe/{token}")]
async fn page(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    match user_of(&state, &token).await {
        Ok(user) => html(
            &state,
            actix_web::http::StatusCode::OK,
            "confirm",
            &user.email.masked(),
        ),
        Err(ApiError::NotFound) => html(
            &state,
            actix_web::http::StatusCode::NOT_FOUND,
            "invalid",
            "",
        ),
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}

/// One-click unsubscribe (RFC 8058): the user's digests and marketing email stop (anyone holding
/// the link).
#[utoipa::path(tag = "digests", params(("token" = String, Path, description = "signed per-user token from the digest", pattern = "^[0-9a-f]{32}\\.[0-9a-f]{64}$")), responses((status = 200, description = "unsubscribed; an HTML confirmation", content_type = "text/html"), (status = 404, description = "altered or unknown link", body = Problem)))]
#[post("/unsubscribe/{token}")]
async fn one_click(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = user_of(&state, &token).await?;
    let changes = UserChanges {
        digest_frequency: Some(DigestFrequency::Off),
        marketing_emails: Some(false),
        ..Default::default()
    };
    let user = accounts::change(&state.services, user.id, changes, TokensAfter::Keep).await?;
    tracing::info!(user = %user.id, "unsubscribed from digests and marketing email by link");
    Ok(html(
        &state,
        actix_web::http::StatusCode::OK,
        "done",
        &user.email.masked(),
    ))
}
