//! Who a request acts for, and who a checkout names: one person is one customer.

use uuid::Uuid;

use super::{Error, Services};
use crate::domain::auth::Principal;
use crate::domain::promotion::Customer;
use crate::domain::user::Role;
use crate::store::orders::Buyer;

/// The customer a claim, an order or a code request is for: the caller's own user, or (a
/// manager) an existing user they name. A customer naming someone else is refused (403); an
/// API key, which is no user, must name one. Codes go only to confirmed people: with
/// `[accounts] verify_email`, a customer whose address is not confirmed yet is refused (403
/// `email_unverified`), whoever asks.
pub fn acting_for(svc: &Services, who: &Principal, named: Option<Uuid>) -> Result<Uuid, Error> {
    let customer = match named {
        Some(c) if who.role.includes(Role::Manager) => c,
        Some(c) if who.user_id == Some(c) => c,
        Some(_) => return Err(Error::Forbidden),
        None => who.user_id.ok_or_else(|| {
            Error::invalid(
                "customer",
                "an API key acts for a customer: give {customer}",
            )
        })?,
    };
    // The account index holds every user: a memory read.
    let verified = svc
        .store
        .users()
        .verified(customer)
        .ok_or(Error::NotFound)?;
    if svc.settings.accounts.verify_email && !verified {
        return Err(Error::EmailUnverified);
    }
    Ok(customer)
}

/// Who a checkout counts for: a reference that is an email address is folded (case, and `+tags`
/// with `[accounts] fold_plus_tags`), and when one of our users with a confirmed address is that
/// person, the checkout counts for that user; a user's uses also count what was redeemed under
/// their own address as a reference (before the account was theirs, or confirmed). So a user
/// id, their email and their plus-address are one customer for per-customer limits and
/// budgets. A reference holding an address however it is written (`Ann <ann@x.org>`,
/// `mailto:`, `"ann"@x.org`, `ann@x.org.`, full-width letters) is that address; one that is a
/// user's id counts for that user; a `customer` no user has is 404. Memory only.
pub fn checkout_person(svc: &Services, customer: Option<Customer>) -> Result<Buyer, Error> {
    let fold = svc.settings.accounts.fold_plus_tags;
    let users = svc.store.users();
    let (person, reference) = match customer {
        Some(Customer::Ref(r)) => {
            let (reference, email) = crate::domain::user::reference_person(&r, fold);
            let person = match email {
                Some(email) => users.person(&email, fold).map(Customer::User),
                None => Uuid::parse_str(&reference)
                    .ok()
                    .filter(|id| users.role(*id).is_some())
                    .map(Customer::User),
            };
            let person = person.unwrap_or_else(|| Customer::Ref(reference.clone()));
            (Some(person), Some(reference))
        }
        Some(Customer::User(id)) => {
            users.role(id).ok_or(Error::NotFound)?;
            (Some(Customer::User(id)), None)
        }
        None => (None, None),
    };
    let also = match &person {
        Some(Customer::User(id)) => users
            .email_of(*id)
            .map(|e| Customer::Ref(e.person(fold)))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    Ok(Buyer {
        person,
        also,
        reference,
    })
}

/// A shop's reference as listings filter by it: kept as [`checkout_person`] keeps it.
pub fn reference_key(svc: &Services, reference: &str) -> String {
    crate::domain::user::reference_person(reference, svc.settings.accounts.fold_plus_tags).0
}
