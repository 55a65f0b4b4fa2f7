//! `/api/v1/networks…`: the configured affiliate networks, their health, and pulling one now.

use actix_web::{get, post, web};

use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, Problem};
use super::views::{NetworkView, network_views};
use crate::actors::messages::PullNow;
use crate::domain::auth::Principal;
use crate::domain::network::{NetworkState, PullSummary};
use crate::domain::user::Role;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list).service(pull);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NetworkList {
    pub items: Vec<NetworkView>,
}

/// Answer of a pull: its summary, and the network's state after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullAnswer {
    #[serde(flatten)]
    pub summary: PullSummary,
    pub state: NetworkState,
    /// Why the pull failed (`ok` is false); nothing was ingested or deleted then.
    pub error: Option<String>,
}

/// Every configured network with its health (manager).
#[utoipa::path(tag = "networks", security(("bearer" = [])), responses((status = 200, body = NetworkList), (status = 401, body = Problem), (status = 403, body = Problem)))]
#[get("/networks")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
) -> Result<web::Json<NetworkList>, ApiError> {
    who.require(Role::Manager)?;
    Ok(web::Json(NetworkList {
        items: network_views(&state).await?,
    }))
}

/// Pull a network now; answers when the pull is done (admin). A failed pull answers 200 with
/// `ok: false` and the error: it ingested nothing and deleted nothing.
#[utoipa::path(
    tag = "networks",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "network name")),
    responses(
        (status = 200, body = PullAnswer),
        (status = 403, body = Problem),
        (status = 404, description = "no such network", body = Problem),
        (status = 409, description = "the network is disabled", body = Problem),
    )
)]
#[post("/networks/{name}/pull")]
async fn pull(
    state: web::Data<AppState>,
    who: Principal,
    name: web::Path<String>,
) -> Result<web::Json<PullAnswer>, ApiError> {
    who.require(Role::Admin)?;
    let name = name.into_inner();
    let settings = state
        .settings
        .networks
        .iter()
        .find(|n| n.name == name)
        .ok_or(ApiError::NotFound)?;
    if !settings.enabled {
        return Err(ApiError::Conflict(format!("network {name} is disabled")));
    }
    let addr = state.actors.networks.get(&name).ok_or(ApiError::NotFound)?;
    let outcome = addr
        .send(PullNow)
        .await
        .map_err(|_| ApiError::Overloaded)?
        .map_err(ApiError::internal)?;
    Ok(web::Json(PullAnswer {
        summary: outcome.summary,
        state: outcome.state,
        error: outcome.error,
    }))
}
