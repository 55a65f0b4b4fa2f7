//! `/api/v1/auth/tokens`: log in (a session token) and log out (revoke the presented token).

use actix_web::{HttpResponse, delete, post, web};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::auth::{Principal, TokenKind, TokenRecord, new_token, token_hash};

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
/// same 401 `invalid_credentials` ("email or password is wrong"), in the same time. An account (known or not) that failed `login_per_minute` times
/// in the last minute from one client address gets 429 there until its allowance comes back,
/// right password or not; other addresses are not affected.
#[utoipa::path(tag = "auth", request_body = Credentials, responses((status = 201, body = TokenView), (status = 401, body = Problem), (status = 429, body = Problem)))]
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
    let user = state.store.run(move |s| s.users().by_email(&email)).await?;
    let ok = state
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let Some(user) = user.filter(|_| ok) else {
        state.rate_limiter.login_failed(&account, &address);
        return Err(ApiError::InvalidCredentials);
    };
    let now = state.clock.now();
    let expires_at = now + Duration::hours(i64::from(state.settings.auth.token_ttl_hours));
    let token = new_token();
    let record = TokenRecord {
        v: TokenRecord::VERSION,
        id: Uuid::now_v7(),
        kind: TokenKind::Session,
        user_id: Some(user.id),
        role: None,
        name: None,
        created_at: now,
        expires_at: Some(expires_at),
        created_by: None,
    };
    let hash = token_hash(&token);
    state
        .store
        .write(move |s| s.tokens().insert(&hash, &record))
        .await?;
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
