//! The HTTP front: parse, authorise, call one use case (`crate::service`) or read, render, map
//! the error.
//! One file per route group; `error.rs` is the one error type; `build_app` assembles it all.

pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod campaigns;
pub mod code_requests;
pub mod confirmations;
pub mod deliveries;
pub mod digests;
pub mod distributions;
pub mod error;
pub mod idempotency;
pub mod json;
pub mod me;
pub mod methods;
pub mod middleware;
pub mod networks;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod pages;
pub mod pagination;
pub mod push;
pub mod rate_limit;
pub mod reports;
pub mod settings;
pub mod subscriptions;
pub mod tokens;
pub mod unsubscribe;
pub mod users;
pub mod validations;
pub mod views;
pub mod vouchers;
pub mod wallet;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, web};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::actors::ActorAddrs;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::security::Passwords;
use crate::store::Store;

/// What every handler can reach (`web::Data<AppState>`). Built once, shared by all workers.
pub struct AppState {
    /// The use cases: every state change a handler asks for goes through them.
    pub services: crate::service::Services,
    pub settings: Arc<Settings>,
    pub store: Store,
    pub clock: SharedClock,
    pub passwords: Passwords,
    pub signer: crate::security::LinkSigner,
    pub templates: Arc<crate::delivery::templates::Templates>,
    /// The server's VAPID identity (its public key is served to browsers).
    pub vapid: Arc<crate::delivery::push::Vapid>,
    pub actors: ActorAddrs,
    pub rate_limiter: Arc<rate_limit::RateLimiter>,
    pub listing_cache: vouchers::ListingCache,
    /// Requests running under an `Idempotency-Key` now (shared by all workers).
    pub in_flight: web::Data<idempotency::InFlight>,
    /// CSV code imports running now: each may hold its file (up to 66 MB) and its codes in
    /// memory, so at most two run at once; a third is told to retry (503).
    pub csv_imports: Arc<tokio::sync::Semaphore>,
}

/// Every documented route.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.configure(ops::routes)
        .service(
            // actix tries routes in this order, running each dynamic route's regex with captures
            // until one matches: the peak-load routes (claims, orders, redemptions, wallet) come
            // first. Overlapping templates only overlap within a module, whose order is kept.
            utoipa_actix_web::scope("/api/v1")
                .configure(campaigns::routes)
                .configure(orders::routes)
                .configure(validations::routes)
                .configure(wallet::routes)
                .configure(distributions::routes)
                .configure(code_requests::routes)
                .configure(push::routes)
                .configure(reports::routes)
                .configure(users::routes)
                .configure(confirmations::routes)
                .configure(tokens::routes)
                .configure(api_keys::routes)
                .configure(networks::routes)
                .configure(vouchers::routes)
                .configure(notifications::routes)
                .configure(subscriptions::routes)
                .configure(digests::routes)
                .configure(deliveries::routes)
                .configure(settings::routes),
        )
        .configure(unsubscribe::routes)
        .configure(confirmations::pages)
        .configure(pages::routes)
        .configure(admin::routes)
        .configure(me::routes);
}

/// The OpenAPI document of [`routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .configure(routes)
        .split_for_parts()
        .1;
    openapi::name_operations(&mut doc);
    openapi::optional_bodies(&mut doc);
    openapi::body_variants(&mut doc);
    openapi::declare_idempotency(&mut doc);
    openapi::declare_errors(&mut doc);
    doc
}

/// The whole application for one worker: state, extractor configs, middleware, routes, docs.
pub fn build_app(
    state: web::Data<AppState>,
    openapi: utoipa::openapi::OpenApi,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.settings.http.body_limit_bytes;
    let methods = web::Data::new(methods::MethodTable::from_document(&openapi));
    let in_flight = state.in_flight.clone();
    App::new()
        .app_data(state)
        .app_data(methods)
        .app_data(in_flight)
        .app_data(error::json_config(limit))
        .app_data(error::payload_config(limit))
        .app_data(error::query_config())
        .app_data(error::path_config())
        .wrap(actix_web::middleware::from_fn(middleware::body_deadline))
        .wrap(actix_web::middleware::from_fn(idempotency::idempotent))
        .wrap(actix_web::middleware::from_fn(rate_limit::limit))
        .wrap(actix_web::middleware::from_fn(middleware::observe))
        .wrap(tracing_actix_web::TracingLogger::<middleware::RequestSpan>::new())
        .into_utoipa_app()
        .configure(routes)
        .into_app()
        .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", openapi))
        .route(
            "/docs",
            web::get().to(|| async {
                actix_web::HttpResponse::PermanentRedirect()
                    .insert_header(("Location", "/docs/"))
                    .finish()
            }),
        )
        .default_service(web::to(error::not_found))
}
