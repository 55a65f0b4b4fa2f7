//! `/api/v1/api-keys`: long-lived keys for shops and apps, made by an admin, acting with a role.

use actix_web::{HttpResponse, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::auth::{Principal, TokenKind, TokenRecord, new_token, token_hash};
use crate::domain::bounded_text;
use crate::domain::user::Role;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    /// Shown once; only its hash is stored.
    pub key: String,
    pub created_at: DateTime<Utc>,
}

/// Make an API key (admin).
#[utoipa::path(tag = "auth", security(("bearer" = [])), request_body = NewApiKey, responses((status = 201, body = ApiKeyView), (status = 403, body = Problem), (status = 422, body = Problem)))]
#[post("/api-keys")]
async fn create(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewApiKey>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Admin)?;
    let name = bounded_text("name", &body.name, 100)?;
    let key = new_token();
    let now = state.clock.now();
    let record = TokenRecord {
        v: TokenRecord::VERSION,
        id: Uuid::now_v7(),
        kind: TokenKind::ApiKey,
        user_id: None,
        role: Some(body.role),
        name: Some(name.clone()),
        created_at: now,
        expires_at: None,
    };
    let view = ApiKeyView {
        id: record.id,
        name,
        role: body.role,
        key: key.clone(),
        created_at: now,
    };
    let hash = token_hash(&key);
    state
        .store
        .write(move |s| s.tokens().insert(&hash, &record))
        .await?;
    Ok(HttpResponse::Created().json(view))
}
