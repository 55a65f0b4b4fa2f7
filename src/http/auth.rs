//! The `Principal` extractor: `Authorization: Bearer <token>` → who is asking, with which role,
//! read from the store's in-memory token and user indexes. Sessions take their user's current
//! role at every request, so a role change or an erased user takes effect at once.

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};

use super::AppState;
use super::error::ApiError;
use crate::domain::auth::{Principal, TokenKind, token_hash};
use uuid::Uuid;

/// The bearer token a request presents, if it has a plausible one.
pub(super) fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then_some(token)
}

/// The hash of the token a request presents (what the token index is keyed by), computed once
/// per request: rate limiting, idempotency and authentication all ask for it.
pub(super) fn presented_hash(req: &HttpRequest) -> Option<[u8; 32]> {
    use actix_web::HttpMessage;
    #[derive(Clone, Copy)]
    struct Presented(Option<[u8; 32]>);
    if let Some(p) = req.extensions().get::<Presented>() {
        return p.0;
    }
    let hash = bearer(req).map(token_hash);
    req.extensions_mut().insert(Presented(hash));
    hash
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Principal, ApiError>>;

    /// From memory alone (the token and user indexes): no store read, no thread hop.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let hash = presented_hash(req).ok_or(ApiError::Unauthorized)?;
    let now = state.clock.now();
    let tokens = state.store.tokens();
    let meta = tokens
        .lookup(&hash)
        .filter(|m| !m.is_expired(now))
        .ok_or(ApiError::Unauthorized)?;
    let (user_id, role) = match meta.kind {
        TokenKind::ApiKey => {
            tokens.touch(meta.id, &hash, now);
            (
                None,
                key_role(&state.store, &meta, now, 0).ok_or(ApiError::Unauthorized)?,
            )
        }
        TokenKind::Session => {
            let user = meta.user_id.ok_or(ApiError::Unauthorized)?;
            let role = state
                .store
                .users()
                .role(user)
                .ok_or(ApiError::Unauthorized)?;
            (Some(user), role)
        }
    };
    Ok(Principal {
        user_id,
        role,
        token_hash: hash,
        token_id: meta.id,
    })
}

/// How far a chain of keys made by keys is followed before it is refused.
const MAX_KEY_CHAIN: usize = 8;

/// What an API key may do now: its own role, never above its creator's current role (a user's,
/// or the creating key's, followed up the chain). A key whose creator is gone (erased, revoked,
/// expired) acts no more: `None`. Keys made before creators were recorded keep their role.
fn key_role(
    store: &crate::store::Store,
    key: &crate::store::tokens::TokenMeta,
    now: chrono::DateTime<chrono::Utc>,
    depth: usize,
) -> Option<crate::domain::user::Role> {
    let own = key.role?;
    let Some(creator) = key.created_by else {
        return Some(own);
    };
    let above = match store.users().role(creator) {
        Some(role) => role,
        None if depth < MAX_KEY_CHAIN => {
            let parent = store
                .tokens()
                .api_key(creator)
                .filter(|k| !k.is_expired(now))?;
            key_role(store, &parent, now, depth + 1)?
        }
        None => return None,
    };
    Some(own.min(above))
}

/// The user must exist (an admin may name anyone).
pub async fn existing_user(
    state: &AppState,
    who: &Principal,
    id: Uuid,
) -> Result<crate::domain::user::User, ApiError> {
    who.may_access_user(id)?;
    state
        .store
        .run(move |s| s.users().get(id))
        .await?
        .ok_or(ApiError::NotFound)
}
