//! Messages shared between actors and the HTTP front.

use actix::Message;

use super::supervise::ActorPanic;

/// Liveness probe used by `/readyz`: any actor that handles it answers when its mailbox is served.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ActorPanic>")]
pub struct Ping;

/// Run the periodic housekeeping now (also sent by the Housekeeper's own timer).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ActorPanic>")]
pub struct Sweep;

/// Pull a network's feed now (answered when the pull is done; joins a pull already running).
#[derive(Debug, Message)]
#[rtype(result = "Result<PullOutcome, ActorPanic>")]
pub struct PullNow;

/// How a pull ended.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub summary: crate::domain::network::PullSummary,
    pub state: crate::domain::network::NetworkState,
    /// Why the pull failed, if it did.
    pub error: Option<String>,
}

/// Re-read the schedule now: due work is done at once and the timer re-armed (DigestShard,
/// DeliveryDispatcher; sent after a change that may bring work forward).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Wake;
