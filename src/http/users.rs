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
use crate::service::accounts::{self, TokensAfter};

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(register)
        .service(me)
        .service(list)
        .service(get_user)
        .service(update)
        .service(erase)
        .service(set_role)
        .service(send_confirmation)
        .service(send_phone_code)
        .service(confirm_phone);
}

/// A user as clients see it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    /// Whether `email` is confirmed (its owner opened the link sent to it, or a manager made
    /// the account). Until then, with address confirmation on, no code goes to the account.
    pub email_verified: bool,
    /// An address asked for in place of `email`, waiting for its owner to open the link sent
    /// to it.
    pub pending_email: Option<String>,
    /// The number on the account; SMS go to it and a till finds the account by it only once it
    /// is confirmed (`phone_verified`).
    pub phone: Option<String>,
    /// Whether `phone` was proven by a one-time code (`POST …/phone/verification`, then
    /// `…/phone/verify`).
    pub phone_verified: bool,
    #[schema(example = "Europe/Paris")]
    pub timezone: String,
    pub digest_hour: u8,
    pub digest_frequency: DigestFrequency,
    pub role: Role,
    /// Whether codes sent by email distributions reach them (`false` once they opted out or
    /// unsubscribed).
    pub marketing_emails: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.as_str().to_owned(),
            email_verified: u.email_verified(),
            pending_email: u.pending_email.as_ref().map(|e| e.as_str().to_owned()),
            phone: u.phone.as_ref().map(|p| p.as_str().to_owned()),
            phone_verified: u.verified_phone().is_some(),
            timezone: u.timezone.to_string(),
            digest_hour: u.digest_hour.get(),
            digest_frequency: u.digest_frequency,
            role: u.role,
            marketing_emails: u.takes_marketing_email(),
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
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// E.164: `+`, then 2 to 15 digits, the first not 0.
    #[serde(default)]
    #[schema(pattern = "^\\+[1-9][0-9]{1,14}$")]
    pub phone: Option<String>,
    /// An IANA timezone name.
    #[schema(schema_with = timezone_schema)]
    pub timezone: String,
    /// Local hour 0-23 for the digest (default 8).
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    #[schema(minimum = 0, maximum = 23)]
    pub digest_hour: Option<i64>,
    #[serde(default)]
    pub digest_frequency: Option<DigestFrequency>,
    /// Codes sent by email distributions: only when `true` (the default is no: consent is
    /// never assumed).
    pub marketing_emails: Option<bool>,
}

/// What a sign-up answers while its address waits to be confirmed: the same whether or not the
/// address had an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignUpPending {
    /// `confirmation_sent`.
    pub status: String,
    pub message: String,
}

/// Every IANA timezone name this build knows, as the schema's `enum`.
fn timezone_names() -> Vec<serde_json::Value> {
    chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| serde_json::Value::from(tz.name()))
        .collect()
}

fn timezone_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("An IANA timezone name (`Europe/Paris`)."))
        .enum_values(Some(timezone_names()))
        .build()
}

fn optional_timezone_schema() -> utoipa::openapi::Object {
    let mut names = timezone_names();
    names.push(serde_json::Value::Null);
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::String,
            utoipa::openapi::schema::Type::Null,
        ]))
        .description(Some(
            "An IANA timezone name (`Europe/Paris`); `null` keeps the current one.",
        ))
        .enum_values(Some(names))
        .build()
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
    /// Needs `current_password`. With address confirmation on, a new address becomes
    /// `pending_email` and a link goes to it; the account's address changes when it is opened.
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// E.164; `null` removes the phone number. A new number is unconfirmed until a code sent
    /// to it is entered (an admin's change for another user is taken as confirmed).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, pattern = "^\\+[1-9][0-9]{1,14}$")]
    pub phone: Option<Option<String>>,
    #[schema(schema_with = optional_timezone_schema)]
    pub timezone: Option<String>,
    #[serde(default, deserialize_with = "super::json::whole_opt")]
    #[schema(minimum = 0, maximum = 23)]
    pub digest_hour: Option<i64>,
    pub digest_frequency: Option<DigestFrequency>,
    /// Codes sent by email distributions: `true` opts in, `false` out.
    pub marketing_emails: Option<bool>,
    /// The new password (8 to 128 characters); needs `current_password`. Every other token of
    /// the user is revoked.
    #[schema(min_length = 8, max_length = 128)]
    pub password: Option<String>,
    /// The password now in use: required to change `email` or `password` (except by an admin
    /// changing another user); missing or wrong is 403.
    pub current_password: Option<String>,
    /// Applied only when an admin sends it; ignored otherwise.
    pub role: Option<Role>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub role: Role,
}

/// Register a customer. A visitor, with address confirmation on (`[accounts] verify_email`, the
/// default), gets 202 and a link by email; an address that has an account gets the same 202 (its
/// owner is told by email instead), so the answer says nothing about who has an account. A
/// manager (with their token) makes a confirmed customer at once: 201, 409 for a taken address;
/// so does anyone with confirmation off. At most `[accounts] registrations_per_hour` per client
/// address (429).
#[utoipa::path(
    tag = "users",
    security((), ("bearer" = [])),
    request_body = NewUserBody,
    responses(
        (status = 201, description = "made by a manager, or with confirmation off", body = UserView),
        (status = 202, description = "a confirmation link is on its way (whether or not the address had an account)", body = SignUpPending),
        (status = 409, description = "email taken (managers, or with confirmation off)", body = Problem),
        (status = 422, description = "invalid field", body = Problem),
        (status = 429, body = Problem),
    )
)]
#[post("/users")]
async fn register(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    who: Option<Principal>,
    body: web::Json<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let by_manager = who.is_some_and(|w| w.role.includes(Role::Manager));
    if !by_manager {
        let address = super::rate_limit::client_address(&req, &state.rate_limiter);
        state.rate_limiter.check_registration(&address)?;
    }
    let email = Email::parse(&body.email)?;
    let mail_to = email.person(true);
    let sign_up = accounts::SignUp {
        password: Password::parse(&body.password)?,
        phone: body.phone.as_deref().map(Phone::parse).transpose()?,
        timezone: Timezone::parse(&body.timezone)?,
        digest_hour: body
            .digest_hour
            .map(DigestHour::parse)
            .transpose()?
            .unwrap_or(DigestHour::parse(i64::from(
                state.settings.digest.default_hour,
            ))?),
        digest_frequency: body.digest_frequency.unwrap_or_default(),
        marketing_emails: body.marketing_emails == Some(true),
        email,
    };
    let registering = accounts::Registering {
        by_manager,
        may_mail: !by_manager && state.rate_limiter.allow_mail(&mail_to),
    };
    match accounts::register(&state.services, sign_up, registering).await? {
        accounts::Registered::Created(user) => Ok(HttpResponse::Created()
            .insert_header(("Location", format!("/api/v1/users/{}", user.id)))
            .json(UserView::from(user.as_ref()))),
        accounts::Registered::LinkSent => Ok(HttpResponse::Accepted().json(SignUpPending {
            status: "confirmation_sent".into(),
            message: "A link to confirm the address is on its way (or, if the address has an \
                      account already, a note to its owner): open it and enter the password; \
                      the account starts then."
                .into(),
        })),
    }
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Items per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// Managers: the user with this email address (case-blind); a page of one, or none. Not an
    /// address: 422.
    #[param(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// Managers: the user with this phone number (E.164); a page of one, or none.
    #[param(pattern = "^\\+[1-9][0-9]{1,14}$")]
    pub phone: Option<String>,
}

/// All users, in creation order (admin); or, for managers too, the one with an email address or
/// phone number (how the console finds a customer).
#[utoipa::path(tag = "users", security(("bearer" = [])), params(UserQuery), responses((status = 200, body = UserPage), (status = 403, body = Problem), (status = 422, body = Problem)))]
#[get("/users")]
async fn list(
    state: web::Data<AppState>,
    who: Principal,
    query: web::Query<UserQuery>,
) -> Result<web::Json<UserPage>, ApiError> {
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    };
    let limit = page.limit()?;
    if query.email.is_some() || query.phone.is_some() {
        who.require(Role::Manager)?;
        let email = query.email.as_deref().map(Email::parse).transpose()?;
        let phone = query.phone.as_deref().map(Phone::parse).transpose()?;
        let found = state
            .store
            .run(move |s| {
                let users = s.users();
                let by_email = match &email {
                    Some(e) => users.by_email(e.as_str())?,
                    None => None,
                };
                let by_phone = match &phone {
                    Some(p) => users
                        .by_phone(p)?
                        .map(|id| users.get(id))
                        .transpose()?
                        .flatten(),
                    None => None,
                };
                // Both given: the one user who has both.
                Ok(match (email.is_some(), phone.is_some()) {
                    (true, true) => {
                        by_email.filter(|u| Some(u.id) == by_phone.as_ref().map(|p| p.id))
                    }
                    (true, false) => by_email,
                    _ => by_phone,
                })
            })
            .await?;
        return Ok(web::Json(UserPage {
            items: found.iter().map(UserView::from).collect(),
            next_cursor: None,
        }));
    }
    who.require(Role::Admin)?;
    let after = page.after_id();
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
    req: actix_web::HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<UserPatch>,
) -> Result<web::Json<UserView>, ApiError> {
    let id = id.into_inner();
    who.may_access_user(id)?;
    let body = body.into_inner();
    let mut changes = UserChanges {
        email: body.email.as_deref().map(Email::parse).transpose()?,
        email_verified_at: None,
        pending_email: None,
        phone_verified_at: None,
        phone_challenge: None,
        phone: body
            .phone
            .map(|p| p.as_deref().map(Phone::parse).transpose())
            .transpose()?,
        timezone: body.timezone.as_deref().map(Timezone::parse).transpose()?,
        digest_hour: body.digest_hour.map(DigestHour::parse).transpose()?,
        digest_frequency: body.digest_frequency,
        role: body.role.filter(|_| who.role.includes(Role::Admin)),
        password_hash: None,
        marketing_emails: body.marketing_emails,
    };
    let new_password = body.password.as_deref().map(Password::parse).transpose()?;
    let admin_for_other = who.role.includes(Role::Admin) && who.user_id != Some(id);
    if (changes.email.is_some() || new_password.is_some()) && !admin_for_other {
        let address = super::rate_limit::client_address(&req, &state.rate_limiter);
        check_current_password(&state, id, &address, body.current_password).await?;
    }
    let mut tokens = TokensAfter::Keep;
    if let Some(p) = new_password {
        changes.password_hash = Some(state.passwords.hash(p).await?);
        let keep = (who.user_id == Some(id)).then_some(who.token_hash);
        tokens = TokensAfter::RevokeAllBut(keep);
    }
    let may_mail = changes
        .email
        .as_ref()
        .is_none_or(|e| state.rate_limiter.allow_mail(&e.person(true)));
    let user = accounts::update(&state.services, &who, id, changes, tokens, may_mail).await?;
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
    accounts::erase(&state.services, &who, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Set a user's role (admin).
#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), request_body = RoleBody, responses((status = 200, body = UserView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "an admin cannot demote themselves", body = Problem)))]
#[put("/users/{id}/role")]
async fn set_role(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
    body: web::Json<RoleBody>,
) -> Result<web::Json<UserView>, ApiError> {
    who.require(Role::Admin)?;
    let changes = UserChanges {
        role: Some(body.role),
        ..UserChanges::default()
    };
    let user = accounts::update(
        &state.services,
        &who,
        id.into_inner(),
        changes,
        TokensAfter::Keep,
        true,
    )
    .await?;
    Ok(web::Json(UserView::from(&user)))
}

/// Changing the email or password needs the password in use: a stolen session alone cannot take
/// the account over. Wrong and missing answer the same 403; wrong tries count against the
/// account's login throttle.
async fn check_current_password(
    state: &AppState,
    id: Uuid,
    address: &str,
    given: Option<String>,
) -> Result<(), ApiError> {
    let missing = || {
        ApiError::NotAllowed(
            "current_password: the password in use is needed to change email or password".into(),
        )
    };
    let given = given.ok_or_else(missing)?;
    let user = load(state, id).await?;
    let account = user.email.folded();
    state.rate_limiter.check_login(&account, address)?;
    state.rate_limiter.login_attempted(&account, address);
    if given.chars().count() > 512
        || !state
            .passwords
            .verify(given, Some(user.password_hash))
            .await?
    {
        return Err(missing());
    }
    Ok(())
}

/// Send a new link confirming the account's address, or the address it asked to change to (self
/// or admin): 202. 409 when there is nothing to confirm; 429 when a link went there lately.
#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), responses((status = 202, description = "a link is on its way", body = SignUpPending), (status = 404, body = Problem), (status = 409, body = Problem), (status = 429, body = Problem)))]
#[post("/users/{id}/email/verification")]
async fn send_confirmation(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    who.may_access_user(id)?;
    let user = load(&state, id).await?;
    let to = user.pending_email.as_ref().unwrap_or(&user.email);
    let may_mail = state.rate_limiter.allow_mail(&to.person(true));
    accounts::send_confirmation(&state.services, id, may_mail).await?;
    Ok(HttpResponse::Accepted().json(SignUpPending {
        status: "confirmation_sent".into(),
        message: "A link to confirm the address is on its way.".into(),
    }))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneToConfirm {
    /// The number to confirm (E.164); the one on the account when absent.
    #[serde(default, deserialize_with = "super::json::some")]
    #[schema(nullable = false, pattern = "^\\+[1-9][0-9]{1,14}$")]
    pub phone: Option<String>,
}

/// A phone code on its way.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneCodeSent {
    pub phone: String,
    /// Until when the code may be entered.
    pub expires_at: DateTime<Utc>,
    pub tries_left: u32,
}

/// Send a one-time code by SMS to prove a phone number is the account's (self or admin): 202.
/// The number counts as the account's (SMS, the wallet by phone, a till's look-up) only once the
/// code is entered at `…/phone/verify`. 422 without an SMS gateway; 409 for a number confirmed
/// already; 429 past the allowance of codes per account, number or client address.
#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), request_body(content = PhoneToConfirm, description = "Optional: absent confirms the number on the account"), responses((status = 202, body = PhoneCodeSent), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
#[post("/users/{id}/phone/verification")]
async fn send_phone_code(
    state: web::Data<AppState>,
    who: Principal,
    req: actix_web::HttpRequest,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    who.may_access_user(id)?;
    let body: PhoneToConfirm = super::json::optional_json(&req, &body)?;
    let phone = match body.phone.as_deref().map(Phone::parse).transpose()? {
        Some(p) => p,
        None => load(&state, id)
            .await?
            .phone
            .ok_or_else(|| ApiError::Invalid("phone: give the number to confirm".into()))?,
    };
    let address = super::rate_limit::client_address(&req, &state.rate_limiter);
    state.rate_limiter.check_text(phone.as_str(), &address)?;
    let challenge = match accounts::send_phone_code(&state.services, id, Some(phone.clone())).await
    {
        Ok(c) => c,
        Err(e) => {
            state.rate_limiter.text_refused(phone.as_str(), &address);
            return Err(e.into());
        }
    };
    Ok(HttpResponse::Accepted().json(PhoneCodeSent {
        phone: challenge.phone.as_str().to_owned(),
        expires_at: challenge.expires_at,
        tries_left: challenge.tries_left,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneCode {
    /// The six digits the SMS carried.
    #[schema(pattern = "^[0-9]{6}$")]
    pub code: String,
}

/// Enter the code an SMS carried (self or admin): the number becomes the account's own,
/// confirmed (an account that had confirmed it before loses it). A wrong code uses a try (422);
/// an expired or used one is 422 too.
#[utoipa::path(tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path, description = "user id")), request_body = PhoneCode, responses((status = 200, body = UserView), (status = 404, body = Problem), (status = 422, body = Problem)))]
#[post("/users/{id}/phone/verify")]
async fn confirm_phone(
    state: web::Data<AppState>,
    who: Principal,
    req: actix_web::HttpRequest,
    id: web::Path<Uuid>,
    body: web::Json<PhoneCode>,
) -> Result<web::Json<UserView>, ApiError> {
    let id = id.into_inner();
    who.may_access_user(id)?;
    // Wrong codes count like wrong passwords: per account and client address.
    let account = format!("phone:{id}");
    let address = super::rate_limit::client_address(&req, &state.rate_limiter);
    state.rate_limiter.check_login(&account, &address)?;
    state.rate_limiter.login_attempted(&account, &address);
    let user = accounts::confirm_phone(&state.services, id, body.into_inner().code).await?;
    Ok(web::Json(UserView::from(&user)))
}

async fn load(state: &AppState, id: Uuid) -> Result<User, ApiError> {
    state
        .store
        .run(move |s| s.users().get(id))
        .await?
        .ok_or(ApiError::NotFound)
}
