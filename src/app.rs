//! The application object: `Application::build(settings)` opens the store, ensures the bootstrap
//! admin, starts the actors (once, outside the HttpServer factory), binds its own listener and
//! builds the server. `run_until_stopped` serves until SIGINT/SIGTERM (or a stop through
//! [`Application::handle`]), then drains requests, stops the actors and flushes the store.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{HttpServer, web};
use anyhow::Context as _;
use uuid::Uuid;

use crate::actors::{Actors, Deps};
use crate::clock::{self, SharedClock};
use crate::config::Settings;
use crate::delivery::templates::Templates;
use crate::domain::user::{DigestFrequency, DigestHour, Email, Role, Timezone, User};
use crate::http::{self, AppState};
use crate::security::{self, LinkSigner, Passwords};
use crate::store::{Store, StoreError};

/// How long in-flight requests get to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long a server whose store failed still answers (503) before it stops.
pub const FAILED_DRAIN: Duration = Duration::from_secs(2);

pub struct Application {
    port: u16,
    server: Server,
    actors: Actors,
    store: Store,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, clock::system()).await
    }

    pub async fn build_with_clock(
        mut settings: Settings,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        // The port first: a start that cannot bind creates nothing (no store, no admin, no
        // password shown and lost).
        let listener = TcpListener::bind(settings.http.bind)
            .with_context(|| format!("binding {}", settings.http.bind))?;
        let address = listener.local_addr()?;
        if !settings.http.public_url_set {
            settings.http.public_url = public_url_of(address)?;
        }
        let settings = Arc::new(settings);
        crate::telemetry::metrics(); // install the recorder before anything records
        let store_settings = settings.store.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&store_settings))
            .await?
            .with_context(|| format!("opening the store at {}", settings.store.path.display()))?;
        let passwords =
            Passwords::new(std::thread::available_parallelism().map_or(2, |n| n.get()))?;
        let bootstrapped = bootstrap_admin(&store, &settings, &clock).await?;
        let secret = settings.auth.secret.clone();
        let signer = LinkSigner::new(
            &store
                .write(move |s| s.meta().hmac_secret(secret.expose()))
                .await?,
        )?;
        let templates_dir = Some(&settings.delivery.email.templates_dir)
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from);
        let templates = Arc::new(Templates::load(templates_dir.as_deref())?);
        // The VAPID key pair: generated at first start, kept in the store.
        let vapid_private = store
            .write(|s| s.meta().vapid_key(crate::delivery::push::Vapid::generate))
            .await?;
        let vapid = Arc::new(crate::delivery::push::Vapid::from_private(&vapid_private)?);
        // Digest schedules are rebuilt in memory from the users' settings and the digests
        // already sent, before the shards read them.
        let (weekday, now) = (settings.digest.weekly_day, clock.now());
        let scheduled = store.write(move |s| s.digests().load(weekday, now)).await?;
        tracing::info!(users = scheduled, "digest schedules loaded");

        let actors = Actors::start(&Deps {
            settings: settings.clone(),
            store: store.clone(),
            clock: clock.clone(),
            signer: signer.clone(),
            templates: templates.clone(),
            vapid: vapid.clone(),
        })?;
        let services = crate::service::Services {
            store: store.clone(),
            clock: clock.clone(),
            actors: actors.addrs(),
            settings: settings.clone(),
            signer: signer.clone(),
            passwords: passwords.clone(),
        };
        let state = web::Data::new(AppState {
            services,
            settings: settings.clone(),
            store: store.clone(),
            clock,
            passwords,
            signer,
            templates,
            vapid,
            actors: actors.addrs(),
            rate_limiter: http::rate_limit::RateLimiter::new(
                &settings.rate_limit,
                &settings.accounts,
            ),
            in_flight: actix_web::web::Data::new(Default::default()),
            csv_imports: Arc::new(tokio::sync::Semaphore::new(
                crate::http::campaigns::CONCURRENT_CSV_IMPORTS,
            )),
            listing_cache: http::vouchers::ListingCache::new(Duration::from_secs(
                settings.catalogue.cache_ttl_s,
            )),
        });
        let openapi = http::openapi();

        tracing::info!(%address, "voucherd listening");
        if let Some(admin) = bootstrapped {
            banner(&settings, &admin);
        }
        let server = HttpServer::new(move || http::build_app(state.clone(), openapi.clone()))
            .workers(settings.http.workers)
            .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
            .listen(listener)?
            .run();
        Ok(Self {
            port: address.port(),
            server,
            actors,
            store,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The running actors' handles (tests wake the schedulers after moving a manual clock).
    pub fn actors(&self) -> crate::actors::ActorAddrs {
        self.actors.addrs()
    }

    /// The store's health: whether it can still make writes durable, and the failpoints tests
    /// arm to make it fail.
    pub fn store_health(&self) -> Arc<crate::store::Health> {
        self.store.health().clone()
    }

    /// Stops the server from elsewhere (tests; the binary uses signals).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then stops the actors and makes everything durable. When this
    /// returns, the only store handle left is the one dropped here (tests reopen the directory).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            server,
            actors,
            store,
            ..
        } = self;
        let handle = server.handle();
        let health = store.health().clone();
        let failed = async move {
            health.until_failed().await;
            // No more writes can be made durable. For a moment the server still answers (writes
            // 503, `/readyz` unavailable) so that clients and balancers see why; then it stops
            // and says so to whoever runs this process (the binary exits non-zero; its service
            // manager restarts it and sled recovers from its log).
            tokio::time::sleep(FAILED_DRAIN).await;
            handle.stop(true).await;
        };
        let served = tokio::select! {
            served = server => served,
            () = failed => Ok(()),
        };
        actors.shutdown().await;
        if store.health().failed() {
            anyhow::bail!(
                "the store failed to make writes durable; restart to recover from its log"
            );
        }
        tokio::task::spawn_blocking(move || {
            let flushed = store.flush_now();
            drop(store);
            flushed
        })
        .await??;
        tracing::info!("voucherd stopped; store flushed");
        Ok(served?)
    }
}

/// The admin a first start created, for the banner: their email and, when it was generated, the
/// password (shown once).
pub struct Bootstrapped {
    pub email: String,
    pub generated_password: Option<String>,
}

/// The URL links point at when `http.public_url` is not set: the bound address (a wildcard host
/// read as 127.0.0.1, the address that reaches it from this machine).
fn public_url_of(address: std::net::SocketAddr) -> anyhow::Result<url::Url> {
    let host = match address.ip() {
        ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    let base = std::net::SocketAddr::new(host, address.port());
    Ok(url::Url::parse(&format!("http://{base}"))?)
}

/// One clear banner on a new store: where the console is, who the admin is, the generated
/// password once, where the docs are. On standard output (with the log), so a journal keeps it.
fn banner(settings: &Settings, admin: &Bootstrapped) {
    let base = settings.http.public_url.as_str().trim_end_matches('/');
    let password = match &admin.generated_password {
        Some(p) => format!(
            "{p}   (generated and shown this once; `voucherd admin reset-password {}` sets another)",
            admin.email
        ),
        None => "the one in VOUCHERD_ADMIN_PASSWORD".to_owned(),
    };
    println!(
        "\n  voucherd is ready on a new store\n\n  console   {base}/admin\n  admin     {}\n  password  {password}\n  customers {base}/me\n  API docs  {base}/docs\n",
        admin.email
    );
}

/// On first start, creates the admin named by `auth.bootstrap_admin_email` with the password from
/// `VOUCHERD_ADMIN_PASSWORD`, or a random one (shown once, in the banner). `None` when an earlier
/// start did it.
async fn bootstrap_admin(
    store: &Store,
    settings: &Settings,
    clock: &SharedClock,
) -> anyhow::Result<Option<Bootstrapped>> {
    if store.run(|s| s.meta().bootstrapped()).await? {
        return Ok(None);
    }
    let email = Email::parse(&settings.auth.bootstrap_admin_email)?;
    let (password, generated) = match &settings.auth.bootstrap_admin_password {
        Some(p) => (p.clone(), false),
        None => (new_password(), true),
    };
    let hash = {
        let p = password.clone();
        tokio::task::spawn_blocking(move || security::hash_blocking(&p)).await??
    };
    let now = clock.now();
    let admin = User {
        v: User::VERSION,
        id: Uuid::now_v7(),
        email: email.clone(),
        password_hash: hash,
        phone: None,
        timezone: Timezone(chrono_tz::UTC),
        digest_hour: DigestHour::default(),
        digest_frequency: DigestFrequency::Off,
        role: Role::Admin,
        created_at: now,
        updated_at: now,
        marketing_opt_out_at: None,
        // The operator named this address: it needs no link.
        email_verified_at: Some(now),
        pending_email: None,
        phone_verified_at: None,
        phone_challenge: None,
    };
    let created = store
        .write(move |s| {
            let created = match s.users().create(&admin) {
                Ok(()) => true,
                // Created by an earlier start that stopped before setting the flag.
                Err(StoreError::Conflict(_)) => false,
                Err(e) => return Err(e),
            };
            s.meta().set_bootstrapped()?;
            Ok(created)
        })
        .await?;
    if !created {
        return Ok(None);
    }
    tracing::info!(email = email.as_str(), "bootstrap admin created");
    Ok(Some(Bootstrapped {
        email: email.as_str().to_owned(),
        generated_password: generated.then_some(password),
    }))
}

/// A new random password (96 bits, hex).
pub fn new_password() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

/// Sets a new password for the user with `email`, offline (the server stopped: the store is
/// opened alone), and signs them out everywhere. The password is `given`, or a new random one;
/// returns it.
pub async fn reset_password(
    store: &Store,
    email: &str,
    given: Option<String>,
) -> anyhow::Result<String> {
    let user = store
        .users()
        .by_email(email)?
        .ok_or_else(|| anyhow::anyhow!("no user with the email {email}"))?;
    let password = given.unwrap_or_else(new_password);
    if password.chars().count() < 8 {
        anyhow::bail!("a password has at least 8 characters");
    }
    let hash = {
        let p = password.clone();
        tokio::task::spawn_blocking(move || security::hash_blocking(&p)).await??
    };
    let changes = crate::domain::user::UserChanges {
        password_hash: Some(hash),
        ..Default::default()
    };
    let id = user.id;
    store
        .write(move |s| {
            s.users().update(id, &changes, chrono::Utc::now())?;
            s.tokens().revoke_user(id)?;
            Ok(())
        })
        .await?;
    Ok(password)
}
