//! The `Principal` extractor: `Authorization: Bearer <token>` → who is asking, with which role.
//! Sessions take their user's current role at every request, so a role change or an erased user
//! takes effect at once.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};

use super::AppState;
use super::error::ApiError;
use crate::domain::auth::{Principal, TokenKind, token_hash};

/// The bearer token a request presents, if it has a plausible one.
pub(super) fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then(|| token.to_owned())
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Principal, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let token = token.ok_or(ApiError::Unauthorized)?;
            let hash = token_hash(&token);
            let now = state.clock.now();
            let found = state
                .store
                .run(move |s| {
                    let Some(record) = s.tokens().get(&hash)? else {
                        return Ok(None);
                    };
                    if record.is_expired(now) {
                        return Ok(None);
                    }
                    match record.kind {
                        TokenKind::ApiKey => {
                            s.tokens().touch(record.id, &hash, now);
                            Ok(record.role.map(|role| (None, role, record.id)))
                        }
                        TokenKind::Session => {
                            let Some(user_id) = record.user_id else {
                                return Ok(None);
                            };
                            Ok(s.users()
                                .get(user_id)?
                                .map(|u| (Some(u.id), u.role, record.id)))
                        }
                    }
                })
                .await?;
            let (user_id, role, token_id) = found.ok_or(ApiError::Unauthorized)?;
            Ok(Principal {
                user_id,
                role,
                token_hash: hash,
                token_id,
            })
        })
    }
}
