//! Web Push: the server's VAPID public key (for the browser's `pushManager.subscribe`), and each
//! user's push subscriptions (self or admin).

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::auth::Principal;
use crate::domain::push::{PushSubscription, PushSubscriptionView};
use crate::store::push::Added;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(vapid_public_key)
        .service(list)
        .service(subscribe)
        .service(unsubscribe);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VapidKey {
    /// The uncompressed P-256 public key, base64url (`applicationServerKey`).
    pub key: String,
}

/// The server's VAPID public key (anyone).
#[utoipa::path(tag = "push", responses((status = 200, body = VapidKey)))]
#[get("/push/vapid-public-key")]
async fn vapid_public_key(state: web::Data<AppState>) -> web::Json<VapidKey> {
    web::Json(VapidKey {
        key: state.vapid.public_key.clone(),
    })
}

/// The browser's `PushSubscription` JSON.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPushSubscription {
    /// The push service URL (https).
    #[schema(max_length = 2048)]
    pub endpoint: String,
    pub keys: PushKeys,
    /// Sent by browsers; ignored.
    #[serde(default, rename = "expirationTime")]
    #[schema(value_type = Option<f64>)]
    pub expiration_time: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushKeys {
    /// The browser's P-256 public key, base64url.
    #[schema(max_length = 200)]
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url.
    #[schema(max_length = 100)]
    pub auth: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushSubscriptionList {
    pub items: Vec<PushSubscriptionView>,
}

/// A user's push subscriptions (self or admin).
#[utoipa::path(tag = "push", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), responses((status = 200, body = PushSubscriptionList), (status = 404, body = Problem)))]
#[get("/users/{id}/push-subscriptions")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<PushSubscriptionList>, ApiError> {
    let user = id.into_inner();
    super::auth::existing_user(&state, &who, user).await?;
    let subs = state
        .store
        .run(move |s| s.push_subscriptions().of_user(user))
        .await?;
    Ok(web::Json(PushSubscriptionList {
        items: subs.iter().map(PushSubscriptionView::from).collect(),
    }))
}

/// Keep a browser's push subscription (self or admin): 201, or 200 when the endpoint was there
/// already (its keys refreshed). 422 when the endpoint is not https or the keys are not usable.
#[utoipa::path(tag = "push", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), request_body = NewPushSubscription, responses((status = 201, body = PushSubscriptionView), (status = 200, body = PushSubscriptionView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[post("/users/{id}/push-subscriptions")]
async fn subscribe(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    body: web::Json<NewPushSubscription>,
) -> Result<HttpResponse, ApiError> {
    let user = id.into_inner();
    super::auth::existing_user(&state, &who, user).await?;
    let body = body.into_inner();
    if body.endpoint.len() > 2048 {
        return Err(ApiError::Invalid(
            "endpoint: must be an https:// URL of at most 2048 characters".into(),
        ));
    }
    let allowed = crate::delivery::endpoint::Allowed {
        loopback: state.settings.delivery.push.allow_loopback,
    };
    let endpoint =
        url::Url::parse(&body.endpoint).map_err(|e| ApiError::Invalid(format!("endpoint: {e}")))?;
    allowed.check(&endpoint).await.map_err(|m| {
        ApiError::Invalid(format!(
            "endpoint: must be an https:// URL of a public push service ({m})"
        ))
    })?;
    crate::delivery::push::check_keys(&body.keys.p256dh, &body.keys.auth)
        .map_err(|m| ApiError::Invalid(m.into()))?;
    let now = state.clock.now();
    let sub = PushSubscription {
        v: PushSubscription::VERSION,
        id: crate::domain::v7_at(now),
        user_id: user,
        endpoint: body.endpoint,
        p256dh: body.keys.p256dh,
        auth: body.keys.auth,
        created_at: now,
    };
    let added = state
        .store
        .write(move |s| s.push_subscriptions().add(sub))
        .await?;
    Ok(match added {
        Added::New(s) => HttpResponse::Created().json(PushSubscriptionView::from(&s)),
        Added::Existing(s) => HttpResponse::Ok().json(PushSubscriptionView::from(&s)),
    })
}

/// Forget a push subscription (self or admin): 204; 404 when there is none by that id.
#[utoipa::path(tag = "push", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id"), ("sub_id" = Uuid, Path, description = "subscription id")), responses((status = 204, description = "removed"), (status = 404, body = Problem)))]
#[delete("/users/{id}/push-subscriptions/{sub_id}")]
async fn unsubscribe(
    state: web::Data<AppState>,
    who: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (user, sub) = path.into_inner();
    who.may_access_user(user)?;
    let removed = state
        .store
        .write(move |s| s.push_subscriptions().remove(user, sub))
        .await?;
    if removed {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
