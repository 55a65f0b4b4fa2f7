//! `/api/v1/api-keys`: long-lived keys for shops and apps, made by an admin, acting with a role
//! that never exceeds their creator's; listed and revoked by id.

use actix_web::{HttpResponse, delete, get, post, web};
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
    cfg.service(create).service(list).service(revoke);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for (1 to 100 characters, not blank).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*[^\\s\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF][^\\u0000-\\u001F\\u007F-\\u009F\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub name: String,
    /// At most the creator's own role.
    pub role: Role,
    /// When the key stops working (default: never). A time already past makes a key that never
    /// authenticates.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key as made: the only time `key` is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    /// Shown once; only its hash is stored. Send as `Authorization: Bearer <key>`.
    pub key: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key as listed (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    /// The user (or API key) that made it; `null` for keys made before this was recorded.
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request since the server started.
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// Make an API key (admin). Its role cannot exceed the creator's.
#[utoipa::path(tag = "auth", security(("bearer" = [])), request_body = NewApiKey, responses((status = 201, body = ApiKeyCreated), (status = 403, body = Problem), (status = 422, body = Problem)))]
#[post("/api-keys")]
async fn create(
    state: web::Data<AppState>,
    who: Principal,
    body: web::Json<NewApiKey>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Admin)?;
    if !who.role.includes(body.role) {
        return Err(ApiError::Forbidden);
    }
    let name = bounded_text("name", &body.name, 100)?;
    let now = state.clock.now();
    if body.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::Invalid(
            "expires_at: must be in the future (a key that has expired would be refused at once)"
                .into(),
        ));
    }
    let key = new_token();
    let created_by = Some(who.user_id.unwrap_or(who.token_id));
    let record = TokenRecord {
        v: TokenRecord::VERSION,
        id: Uuid::now_v7(),
        kind: TokenKind::ApiKey,
        user_id: None,
        role: Some(body.role),
        name: Some(name.clone()),
        created_at: now,
        expires_at: body.expires_at,
        created_by,
    };
    let view = ApiKeyCreated {
        id: record.id,
        name,
        role: body.role,
        key: key.clone(),
        created_by,
        created_at: now,
        expires_at: body.expires_at,
    };
    let hash = token_hash(&key);
    state
        .store
        .write(move |s| s.tokens().insert(&hash, &record))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/api-keys/{}", view.id)))
        .json(view))
}

/// Every API key, oldest first (admin). Keys themselves are never shown again.
#[utoipa::path(tag = "auth", security(("bearer" = [])), responses((status = 200, body = ApiKeyList)))]
#[get("/api-keys")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
) -> Result<web::Json<ApiKeyList>, ApiError> {
    who.require(Role::Admin)?;
    let keys = state.store.run(|s| s.tokens().api_keys()).await?;
    let items = keys
        .into_iter()
        .map(|(r, last_used_at)| ApiKeyView {
            id: r.id,
            name: r.name.unwrap_or_default(),
            role: r.role.unwrap_or(Role::Customer),
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at,
        })
        .collect();
    Ok(web::Json(ApiKeyList { items }))
}

/// Revoke an API key by id, at once (admin).
#[utoipa::path(tag = "auth", security(("bearer" = [])), params(("id" = Uuid, Path, description = "API key id")), responses((status = 204, description = "revoked"), (status = 404, body = Problem)))]
#[delete("/api-keys/{id}")]
async fn revoke(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    who.require(Role::Admin)?;
    let id = id.into_inner();
    let existed = state
        .store
        .write(move |s| s.tokens().revoke_api_key(id))
        .await?;
    if !existed {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}
