//! Who a request acts for: the caller, or — a manager only — the customer they name.

use uuid::Uuid;

use super::{Error, Services};
use crate::domain::auth::Principal;
use crate::domain::user::Role;

/// The customer a claim, an order or a code request is for: the caller's own user, or (a
/// manager) an existing user they name. A customer naming someone else is refused (403); an
/// API key, which is no user, must name one.
pub fn acting_for(svc: &Services, who: &Principal, named: Option<Uuid>) -> Result<Uuid, Error> {
    match named {
        Some(c) if who.role.includes(Role::Manager) => {
            // The role index holds every user: a memory read.
            svc.store.users().role(c).ok_or(Error::NotFound)?;
            Ok(c)
        }
        Some(c) if who.user_id == Some(c) => Ok(c),
        Some(_) => Err(Error::Forbidden),
        None => who.user_id.ok_or_else(|| {
            Error::invalid(
                "customer",
                "an API key acts for a customer: give {customer}",
            )
        }),
    }
}
