//! Accounts: registration, changes to a user (settings, role, password) with their digest
//! schedule, and erasure. A user's record and their digest schedule change in one writer
//! command; the shard owning their timezone is told. Erasure goes through the user's
//! SubscriptionManager, the owner of their subscriptions, which erases everything naming them
//! and stops.

use uuid::Uuid;

use super::{Error, Services};
use crate::actors::subscriptions::EraseUser;
use crate::domain::auth::Principal;
use crate::domain::user::{Role, User, UserChanges};

/// Stores a new user with their digest schedule, in one durable write.
pub async fn register(svc: &Services, user: User) -> Result<User, Error> {
    let now = svc.clock.now();
    let weekday = svc.settings.digest.weekly_day;
    let stored = user.clone();
    svc.store
        .write(move |s| {
            s.users().create(&stored)?;
            s.digests().schedule(&stored, weekday, now)?;
            Ok(())
        })
        .await?;
    svc.actors.schedule_changed(user.timezone.0);
    Ok(user)
}

/// What a change to a user does to the user's tokens (in the same write).
#[derive(Debug, Clone, Copy)]
pub enum TokensAfter {
    Keep,
    /// A password change: every token of the user but this one (the session that changed it).
    RevokeAllBut(Option<[u8; 32]>),
}

/// A change asked by `who` (self or an admin): an admin cannot demote themselves (409).
pub async fn update(
    svc: &Services,
    who: &Principal,
    id: Uuid,
    changes: UserChanges,
    tokens: TokensAfter,
) -> Result<User, Error> {
    if changes.role.is_some_and(|r| r != Role::Admin) && who.user_id == Some(id) {
        return Err(Error::Conflict("an admin cannot demote themselves".into()));
    }
    change(svc, id, changes, tokens).await
}

/// Applies a change to a user and moves their digest schedule with it (timezone, hour,
/// frequency), in one durable write.
pub async fn change(
    svc: &Services,
    id: Uuid,
    changes: UserChanges,
    tokens: TokensAfter,
) -> Result<User, Error> {
    let now = svc.clock.now();
    let weekday = svc.settings.digest.weekly_day;
    let user = svc
        .store
        .write(move |s| {
            let user = s.users().update(id, &changes, now)?;
            s.digests().schedule(&user, weekday, now)?;
            if let TokensAfter::RevokeAllBut(keep) = tokens {
                s.tokens().revoke_user_except(id, keep.as_ref())?;
            }
            Ok(user)
        })
        .await?;
    svc.actors.schedule_changed(user.timezone.0);
    Ok(user)
}

/// Erases a user and their personal data: how many tokens went. An admin cannot erase
/// themselves (409).
pub async fn erase(svc: &Services, who: &Principal, id: Uuid) -> Result<usize, Error> {
    who.may_access_user(id)?;
    if who.role.includes(Role::Admin) && who.user_id == Some(id) {
        return Err(Error::Conflict("an admin cannot erase themselves".into()));
    }
    let (tokens, deliveries) = svc.actors.registry.get(id).send(EraseUser).await??;
    svc.actors.registry.forget(id);
    // The file transport's copies of what was sent to them (none with SMTP).
    let store_path = svc.settings.store.path.clone();
    let files = tokio::task::spawn_blocking(move || {
        crate::delivery::email::erase_files(&store_path, &deliveries)
    })
    .await
    .unwrap_or(0);
    tracing::info!(user = %id, tokens, mail_files = files, "user erased");
    Ok(tokens)
}
