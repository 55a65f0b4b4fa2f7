//! Who is asking and what they may reach. Tokens are opaque random strings; only their SHA-256
//! is ever stored, so a leaked store does not leak usable tokens.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::user::Role;

/// Prefix of every token voucherd issues, so a leaked one is recognisable in logs and scanners.
pub const TOKEN_PREFIX: &str = "vd_";

/// A new random bearer token (256 bits).
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// From `POST /auth/tokens`: acts as its user with the user's current role; expires.
    Session,
    /// Made by an admin: acts with its own role (never above its creator's), has no user,
    /// expires only when made with `expires_at`.
    ApiKey,
}

/// The stored token record (keyed by the token's hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub v: u16,
    pub id: Uuid,
    pub kind: TokenKind,
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// Only API keys carry a role; sessions take their user's role at each request.
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    #[serde(with = "crate::domain::times::micros_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Who made an API key: the creating user, or the creating API key's id (`None` for keys
    /// made before this was recorded, and for sessions).
    #[serde(default)]
    pub created_by: Option<Uuid>,
}

impl TokenRecord {
    pub const VERSION: u16 = 1;

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user acting; `None` for an API key.
    pub user_id: Option<Uuid>,
    pub role: Role,
    pub token_hash: [u8; 32],
    /// The token's id (the API key's id for an API key).
    pub token_id: Uuid,
}

/// What a failed authorisation looks like to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The role is too low for the route: 403.
    Forbidden,
    /// The resource belongs to someone else: answered as if it did not exist (404).
    Hidden,
}

impl Principal {
    pub fn require(&self, role: Role) -> Result<(), Denied> {
        if self.role.includes(role) {
            Ok(())
        } else {
            Err(Denied::Forbidden)
        }
    }

    /// A user's own resources are reachable by that user and by admins; everyone else gets 404.
    pub fn may_access_user(&self, user_id: Uuid) -> Result<(), Denied> {
        if self.role.includes(Role::Admin) || self.user_id == Some(user_id) {
            Ok(())
        } else {
            Err(Denied::Hidden)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, user: Option<Uuid>) -> Principal {
        Principal {
            user_id: user,
            role,
            token_hash: [0; 32],
            token_id: Uuid::nil(),
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == 67);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn others_resources_are_hidden() {
        let me = Uuid::now_v7();
        let other = Uuid::now_v7();
        let customer = principal(Role::Customer, Some(me));
        assert_eq!(customer.may_access_user(me), Ok(()));
        assert_eq!(customer.may_access_user(other), Err(Denied::Hidden));
        assert_eq!(
            principal(Role::Manager, Some(me)).may_access_user(other),
            Err(Denied::Hidden)
        );
        assert_eq!(principal(Role::Admin, None).may_access_user(other), Ok(()));
        assert_eq!(customer.require(Role::Admin), Err(Denied::Forbidden));
    }
}
