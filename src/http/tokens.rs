//! `/api/v1/auth/tokens`: log in (a session token) and log out (revoke the presented token).

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::auth::Principal;
use crate::service::accounts;
use actix_web::{HttpResponse, delete, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(login).service(logout);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Shown once; send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Exchange email and password for a bearer token. Wrong password and unknown email get the
/// same 401 `invalid_credentials` ("email or password is wrong") after the same work, also when
/// password checks are saturated (503 for both). Every attempt, right or wrong, counts: an
/// account from one client address gets `login_per_minute` a minute (a burst of as many), an
/// address five times that over all accounts, then 429 until the allowance comes back; other
/// addresses are not affected. A user keeps at most `[accounts] max_sessions_per_user`
/// sessions: signing in past it ends the oldest.
#[utoipa::path(tag = "auth", request_body = Credentials, responses((status = 201, body = TokenView), (status = 401, body = Problem), (status = 429, body = Problem), (status = 503, body = Problem)))]
#[post("/auth/tokens")]
async fn login(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let Credentials { email, password } = body.into_inner();
    if email.len() > 254 || password.len() > 512 {
        return Err(ApiError::InvalidCredentials);
    }
    let account = email.trim().to_ascii_lowercase();
    let address = super::rate_limit::client_address(&req, &state.rate_limiter);
    state.rate_limiter.check_login(&account, &address)?;
    state.rate_limiter.login_attempted(&account, &address);
    let (token, expires_at) = accounts::sign_in(&state.services, email, password).await?;
    Ok(HttpResponse::Created().json(TokenView { token, expires_at }))
}

/// Revoke the token this request presents.
#[utoipa::path(tag = "auth", security(("bearer" = [])), responses((status = 204, description = "revoked"), (status = 401, body = Problem)))]
#[delete("/auth/tokens/current")]
async fn logout(state: web::Data<AppState>, who: Principal) -> Result<HttpResponse, ApiError> {
    let hash = who.token_hash;
    state.store.write(move |s| s.tokens().revoke(&hash)).await?;
    Ok(HttpResponse::NoContent().finish())
}
