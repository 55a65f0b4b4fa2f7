//! Confirming an email address with the signed link sent to it and the account's password:
//! `GET /verify-email/{token}` shows a page asking for the password (link scanners confirm
//! nothing), whose `POST` confirms; `POST /api/v1/email-verifications {token, password}` does the
//! same for an app holding the link. Wrong passwords count like wrong sign-ins.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};
use super::users::UserView;
use crate::service::accounts;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(confirm);
}

pub fn pages(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(page).service(confirm_on_page);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    /// The token of the link sent by email (`…/verify-email/{token}`).
    #[schema(pattern = "^[0-9a-f]{32}\\.[0-9]{1,12}\\.[0-9a-f]{64}$")]
    pub token: String,
    /// The account's password (the one chosen at sign-up).
    #[schema(max_length = 512)]
    pub password: String,
}

/// Confirm an email address with the token of the link sent to it and the account's password:
/// 200 with the account. 404 for a link that is altered or for an address the account no longer
/// asks for; 401 for a wrong password (tries count like sign-ins: 429 past them); 409 for an
/// expired link, or an address another account confirmed meanwhile.
#[utoipa::path(tag = "users", request_body = Confirmation, responses((status = 200, body = UserView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 429, body = Problem)))]
#[post("/email-verifications")]
async fn confirm(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Json<Confirmation>,
) -> Result<web::Json<UserView>, ApiError> {
    let Confirmation { token, password } = body.into_inner();
    let target = accounts::link_target(&state.services, &token).await?;
    let user = confirm_link(&state, &req, &token, target, password).await?;
    Ok(web::Json(UserView::from(&user)))
}

/// Counts the try as a sign-in of the link's account from the client's address (a link is no
/// way around the sign-in throttle), then confirms.
async fn confirm_link(
    state: &AppState,
    req: &actix_web::HttpRequest,
    token: &str,
    target: accounts::LinkTarget,
    password: String,
) -> Result<crate::domain::user::User, ApiError> {
    let account = target.account();
    let address = super::rate_limit::client_address(req, &state.rate_limiter);
    state.rate_limiter.check_login(&account, &address)?;
    state.rate_limiter.login_attempted(&account, &address);
    Ok(accounts::confirm_email(&state.services, token, target, password).await?)
}

/// The confirmation page's form.
#[derive(Debug, Deserialize)]
struct PageForm {
    password: String,
}

#[derive(Serialize)]
struct PageContext<'a> {
    state: &'a str,
    email: &'a str,
}

/// The page's Content-Security-Policy: its own inline style and a form posting to itself.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
    form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn html(state: &AppState, status: StatusCode, which: &str, email: &str) -> HttpResponse {
    match state.templates.render(
        "confirm_email_page.html",
        &PageContext {
            state: which,
            email,
        },
    ) {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("Content-Security-Policy", PAGE_POLICY))
            .insert_header(("Referrer-Policy", "no-referrer"))
            .insert_header(("Cache-Control", "no-store"))
            .body(body),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::internal(e)),
    }
}

/// The confirmation page: asks to confirm (anyone holding the link); nothing changes until its
/// button is pressed.
#[utoipa::path(tag = "users", params(("token" = String, Path, description = "the signed token of the link sent by email", pattern = "^[0-9a-f]{32}\\.[0-9]{1,12}\\.[0-9a-f]{64}$")), responses((status = 200, description = "an HTML page with a confirm button", content_type = "text/html"), (status = 404, description = "an altered or unknown link", content_type = "text/html")))]
#[get("/verify-email/{token}")]
async fn page(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    match accounts::link_target(&state.services, &token).await {
        // Opened again after it did its work: nothing to ask.
        Ok(target) if target.is_done() => html(
            &state,
            StatusCode::OK,
            "already",
            &target.address().masked(),
        ),
        Ok(target) => html(
            &state,
            StatusCode::OK,
            "confirm",
            &target.address().masked(),
        ),
        Err(crate::service::Error::NotFound) => html(&state, StatusCode::NOT_FOUND, "invalid", ""),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::from(e)),
    }
}

/// The page's button: confirms the address (anyone holding the link).
#[utoipa::path(tag = "users", params(("token" = String, Path, description = "the signed token of the link sent by email", pattern = "^[0-9a-f]{32}\\.[0-9]{1,12}\\.[0-9a-f]{64}$")), request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`password=…`: the account's password"), responses((status = 200, description = "confirmed; an HTML page saying so", content_type = "text/html"), (status = 401, description = "a wrong password; the page asks again", content_type = "text/html"), (status = 404, description = "an altered or unknown link", content_type = "text/html"), (status = 409, description = "an expired link, or an address another account took", content_type = "text/html"), (status = 422, description = "no password given; the page asks for it", content_type = "text/html"), (status = 429, description = "too many tries", content_type = "text/html")))]
#[post("/verify-email/{token}")]
async fn confirm_on_page(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    token: web::Path<String>,
    form: Option<web::Form<PageForm>>,
) -> HttpResponse {
    let target = match accounts::link_target(&state.services, &token).await {
        Ok(target) => target,
        Err(crate::service::Error::NotFound) => {
            return html(&state, StatusCode::NOT_FOUND, "invalid", "");
        }
        Err(e) => return actix_web::ResponseError::error_response(&ApiError::from(e)),
    };
    let address = target.address().masked();
    let Some(form) = form else {
        return html(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            "confirm",
            &address,
        );
    };
    match confirm_link(&state, &req, &token, target, form.into_inner().password).await {
        Ok(user) => html(&state, StatusCode::OK, "done", &user.email.masked()),
        Err(ApiError::InvalidCredentials) => {
            html(&state, StatusCode::UNAUTHORIZED, "retry", &address)
        }
        Err(ApiError::NotFound) => html(&state, StatusCode::NOT_FOUND, "invalid", ""),
        Err(ApiError::RateLimited { .. }) => {
            html(&state, StatusCode::TOO_MANY_REQUESTS, "later", "")
        }
        Err(ApiError::Conflict(why)) => {
            let which = if why == accounts::LINK_EXPIRED {
                "expired"
            } else {
                "taken"
            };
            html(&state, StatusCode::CONFLICT, which, "")
        }
        Err(e) => actix_web::ResponseError::error_response(&e),
    }
}
