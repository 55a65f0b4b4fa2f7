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
