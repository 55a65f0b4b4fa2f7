//! Use cases: one function per state change of an aggregate (accounts, campaigns and their
//! codes, orders and redemptions, distributions, code requests, erasure). This is the one place
//! a change is decided: handlers parse, call one function here and render its answer; actors and
//! the CLI call the same functions. A use case takes [`Services`] (the store, the actors' `Addr`s,
//! the clock, the settings), applies the domain's rules (`src/domain/`), hands the change to its
//! owner (a campaign's state to its CampaignActor, a user's subscriptions to their
//! SubscriptionManager, every record to the store's one writer) and returns a typed [`Error`].
//!
//! Nothing here knows HTTP: `http::error` maps [`Error`] to a status and a problem document.

pub mod accounts;
pub mod campaigns;
pub mod code_requests;
pub mod customers;
pub mod distributions;
pub mod orders;

use std::sync::Arc;

use crate::actors::ActorAddrs;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domain::ValidationError;
use crate::domain::auth::Denied;
use crate::store::{Store, StoreError};

/// What every use case reaches. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub clock: SharedClock,
    pub actors: ActorAddrs,
    pub settings: Arc<Settings>,
    /// Signs and checks confirmation links, works out phone codes.
    pub signer: crate::security::LinkSigner,
    /// Password hashing, bounded and off the async threads.
    pub passwords: crate::security::Passwords,
}

/// Why a use case did not change anything (or, for [`Error::Store`], could not say it did).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule of the input is broken (422 `validation_failed`).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("no such resource")]
    NotFound,
    #[error("your role does not allow this")]
    Forbidden,
    /// The state of what is changed does not allow it (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    #[error("every code of this campaign is taken")]
    SoldOut,
    #[error("{0}")]
    LimitReached(String),
    #[error("{0}")]
    NotActive(String),
    /// A code does not apply to the order, for this reason (409).
    #[error("{}", .0.describe())]
    Inapplicable(crate::domain::promotion::Reason),
    /// The caller used up an allowance of theirs (429).
    #[error("{0}")]
    TooMany(String),
    /// A priced campaign's codes (a price, or a gift card) are bought, never claimed (409).
    #[error("this campaign's codes are sold: place an order (POST /api/v1/orders) and pay it")]
    PurchaseRequired,
    /// The customer has not confirmed their email address yet (403).
    #[error("the customer's email address is not confirmed yet: open the link sent to it")]
    EmailUnverified,
    /// One request names a code twice (422).
    #[error("codes: `{0}` is listed more than once")]
    DuplicateCode(String),
    /// An order was not paid in time: its codes went back (409).
    #[error("the order was not paid in time: its codes went back to the campaign")]
    OrderExpired,
    /// A queue is full (an actor's mailbox, a provider's places): retry shortly (503).
    #[error("the server is busy; retry shortly")]
    Overloaded,
    /// An email and password that do not sign in (the same for an unknown email) (401).
    #[error("email or password is wrong")]
    BadCredentials,
    /// Password hashing is saturated: retry shortly (503).
    #[error("the server is busy; retry shortly")]
    Busy,
    /// The store said no, or failed: its own kind decides the answer.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// A broken rule of `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid(ValidationError::new(field, message))
    }
}

impl From<Denied> for Error {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Forbidden => Error::Forbidden,
            Denied::Hidden => Error::NotFound,
        }
    }
}

impl From<crate::security::HashError> for Error {
    fn from(e: crate::security::HashError) -> Self {
        match e {
            crate::security::HashError::Busy => Error::Busy,
            crate::security::HashError::Failed(why) => {
                Error::Store(StoreError::Blocking(format!("password hashing: {why}")))
            }
        }
    }
}

impl From<actix::MailboxError> for Error {
    /// An actor whose mailbox is full or that is restarting: the caller may retry.
    fn from(_: actix::MailboxError) -> Self {
        Error::Overloaded
    }
}

impl From<crate::actors::campaign::CampaignError> for Error {
    fn from(e: crate::actors::campaign::CampaignError) -> Self {
        use crate::actors::campaign::CampaignError;
        match e {
            CampaignError::NotFound => Error::NotFound,
            e @ (CampaignError::Taken(_) | CampaignError::Full { .. } | CampaignError::Ended) => {
                Error::Conflict(e.to_string())
            }
            CampaignError::Invalid(e) => Error::Invalid(e),
            CampaignError::Store(e) => Error::Store(e),
        }
    }
}

impl From<crate::domain::campaign::Refusal> for Error {
    fn from(e: crate::domain::campaign::Refusal) -> Self {
        use crate::domain::campaign::Refusal;
        match e {
            Refusal::NotActive(why) => Error::NotActive(why.to_owned()),
            Refusal::SoldOut => Error::SoldOut,
            e @ Refusal::LimitReached(_) => Error::LimitReached(e.to_string()),
            Refusal::NoCustomer => Error::NotFound,
        }
    }
}

impl From<crate::actors::subscriptions::ManagerError> for Error {
    fn from(e: crate::actors::subscriptions::ManagerError) -> Self {
        match e {
            crate::actors::subscriptions::ManagerError::Store(e) => Error::Store(e),
            crate::actors::subscriptions::ManagerError::Mailbox(_) => Error::Overloaded,
        }
    }
}
