//! `/api/v1/users…`: registration, self-service, admin management, roles.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::pagination::{PageQuery, next_cursor};
use crate::domain::auth::Principal;
use crate::domain::user::{
    DigestFrequency, DigestHour, Email, Password, Phone, Role, Timezone, User, UserChanges,
};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(register)
        .service(me)
        .service(list)
        .service(get_user)
        .service(update)
        .service(erase)
        .service(set_role);
}

/// A user as clients see it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub phone: Option<String>,
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
    pub digest_hour: u8,
    pub digest_frequency: DigestFrequency,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.as_str().to_owned(),
            phone: u.phone.as_ref().map(|p| p.as_str().to_owned()),
            timezone: u.timezone.to_string(),
            digest_hour: u.digest_hour.get(),
            digest_frequency: u.digest_frequency,
            role: u.role,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub phone: Option<String>,
    pub timezone: String,
    /// Local hour 0-23 for the digest (default 8).
    #[serde(default)]
    pub digest_hour: Option<i64>,
    #[serde(default)]
    pub digest_frequency: Option<DigestFrequency>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<String>,
    /// `null` removes the phone number.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    pub timezone: Option<String>,
    pub digest_hour: Option<i64>,
    pub digest_frequency: Option<DigestFrequency>,
    pub password: Option<String>,
    /// Applied only when an admin sends it; ignored otherwise.
    pub role: Option<Role>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub role: Role,
}

/// Register a customer.
#[utoipa::path(
    tag = "users",
    request_body = NewUserBody,
    responses(
        (status = 201, body = UserView),
        (status = 409, description = "email taken", body = Problem),
        (status = 422, description = "invalid field", body = Problem),
    )
)]
#[post("/users")]
async fn register(
    state: web::Data<AppState>,
    body: web::Json<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let email = Email::parse(&body.email)?;
    let password = Password::parse(&body.password)?;
    let phone = body.phone.as_deref().map(Phone::parse).transpose()?;
    let timezone = Timezone::parse(&body.timezone)?;
    let digest_hour = body
        .digest_hour
        .map(DigestHour::parse)
        .transpose()?
        .unwrap_or(DigestHour::parse(i64::from(
            state.settings.digest.default_hour,
        ))?);
    let password_hash = state.passwords.hash(password).await?;
    let now = state.clock.now();
    let user = User {
        v: User::VERSION,
        id: Uuid::now_v7(),
        email,
        password_hash,
        phone,
        timezone,
        digest_hour,
        digest_frequency: body.digest_frequency.unwrap_or_default(),
        role: Role::Customer,
        created_at: now,
        updated_at: now,
    };
    super::digests::create_and_schedule(&state, user.clone()).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/users/{}", user.id)))
        .json(UserView::from(&user)))
}

/// The caller's own user.
#[utoipa::path(tag = "users", security(("bearer" = [])), responses((status = 200, body = UserView), (status = 401, body = Problem), (status = 404, description = "API keys have no user", body = Problem)))]
#[get("/users/me")]
async fn me(state: web::Data<AppState>, who: Principal) -> Result<web::Json<UserView>, ApiError> {
    let id = who.user_id.ok_or(ApiError::NotFound)?;
    load(&state, id)
        .await
        .map(|u| web::Json(UserView::from(&u)))
}

/// All users, in creation order (admin).
#[utoipa::path(tag = "users", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = UserPage), (status = 403, body = Problem)))]
#[get("/users")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    page: web::Query<PageQuery>,
) -> Result<web::Json<UserPage>, ApiError> {
    who.require(Role::Admin)?;
    let limit = page.limit()?;
    let after = page.after_id()?;
    let users = state
        .store
        .run(move |s| s.users().list(after, limit))
        .await?;
    Ok(web::Json(UserPage {
        next_cursor: next_cursor(&users, limit, |u| u.id),
        items: users.iter().map(UserView::from).collect(),
    }))
}

/// One user (self or admin; anyone else gets 404).
#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), responses((status = 200, body = UserView), (status = 404, body = Problem)))]
#[get("/users/{id}")]
async fn get_user(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<web::Json<UserView>, ApiError> {
    let id = id.into_inner();
    who.may_access_user(id)?;
    load(&state, id)
        .await
        .map(|u| web::Json(UserView::from(&u)))
}

/// Change email, phone, timezone, digest settings or password (self or admin); `role` only by an admin.
#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), request_body = UserPatch, responses((status = 200, body = UserView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
#[patch("/users/{id}")]
async fn update(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    body: web::Json<UserPatch>,
) -> Result<web::Json<UserView>, ApiError> {
    let id = id.into_inner();
    who.may_access_user(id)?;
    let body = body.into_inner();
    let mut changes = UserChanges {
        email: body.email.as_deref().map(Email::parse).transpose()?,
        phone: body
            .phone
            .map(|p| p.as_deref().map(Phone::parse).transpose())
            .transpose()?,
        timezone: body.timezone.as_deref().map(Timezone::parse).transpose()?,
        digest_hour: body.digest_hour.map(DigestHour::parse).transpose()?,
        digest_frequency: body.digest_frequency,
        role: body.role.filter(|_| who.role.includes(Role::Admin)),
        password_hash: None,
    };
    if changes.role.is_some_and(|r| r != Role::Admin) && who.user_id == Some(id) {
        return Err(ApiError::Conflict(
            "an admin cannot demote themselves".into(),
        ));
    }
    if let Some(p) = body.password.as_deref() {
        changes.password_hash = Some(state.passwords.hash(Password::parse(p)?).await?);
    }
    let user = super::digests::update_and_reschedule(&state, id, changes).await?;
    Ok(web::Json(UserView::from(&user)))
}

/// Erase a user and their personal data (self or admin).
#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), responses((status = 204, description = "erased"), (status = 404, body = Problem), (status = 409, body = Problem)))]
#[delete("/users/{id}")]
async fn erase(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    who.may_access_user(id)?;
    if who.role.includes(Role::Admin) && who.user_id == Some(id) {
        return Err(ApiError::Conflict(
            "an admin cannot erase themselves".into(),
        ));
    }
    // Subscriptions and digests (with their deliveries) first: a crash half-way leaves a user who
    // can be erased again, never orphaned personal data.
    let erased = state
        .store
        .write(move |s| {
            if s.users().get(id)?.is_none() {
                return Err(crate::store::StoreError::NotFound);
            }
            s.subscriptions().erase_user(id)?;
            s.digests().erase_user(id)?;
            s.users().erase(id)
        })
        .await?;
    state.actors.registry.forget(id);
    tracing::info!(user = %id, tokens = erased.tokens, "user erased");
    Ok(HttpResponse::NoContent().finish())
}

/// Set a user's role (admin).
#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), request_body = RoleBody, responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem)))]
#[put("/users/{id}/role")]
async fn set_role(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    body: web::Json<RoleBody>,
) -> Result<web::Json<UserView>, ApiError> {
    who.require(Role::Admin)?;
    let id = id.into_inner();
    if who.user_id == Some(id) && body.role != Role::Admin {
        return Err(ApiError::Conflict(
            "an admin cannot demote themselves".into(),
        ));
    }
    let changes = UserChanges {
        role: Some(body.role),
        ..UserChanges::default()
    };
    let user = super::digests::update_and_reschedule(&state, id, changes).await?;
    Ok(web::Json(UserView::from(&user)))
}

async fn load(state: &AppState, id: Uuid) -> Result<User, ApiError> {
    state
        .store
        .run(move |s| s.users().get(id))
        .await?
        .ok_or(ApiError::NotFound)
}
