//! Settings: built-in defaults ← `config.toml` ← `VOUCHERD__SECTION__KEY` environment ← CLI flags.
//!
//! The defaults are embedded (`DEFAULTS`), so the binary serves with no file at all. Every section
//! denies unknown keys, and [`Settings::validate`] rejects invalid values, so a typo or a bad value
//! stops the start with a message naming the key instead of being silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The embedded defaults: the same values the repository's `config.toml` documents.
pub const DEFAULTS: &str = r#"
[http]
bind = "127.0.0.1:8080"
public_url = "http://127.0.0.1:8080"
workers = 2
body_limit_bytes = 65536
body_timeout_s = 60
metrics_token = ""

[store]
path = "./data"
cache_capacity_mb = 256
fsync = true
writer_queue = 65536

[auth]
bootstrap_admin_email = "admin@localhost"
token_ttl_hours = 720
secret = ""

[rate_limit]
per_second = 50
burst = 100
trusted_proxies = []
login_per_minute = 10
max_clients = 100000
idempotency_keys_per_day = 100000

[catalogue]
retention_days = 30
max_response_mb = 32
max_pages = 1000
max_pull_mb = 256
failing_after = 3
retry_base_s = 30
retry_max_s = 3600
cache_ttl_s = 10

[digest]
default_hour = 8
shards = 8
max_vouchers = 25
weekly_day = "mon"

[delivery]
max_attempts = 8
retry_base_s = 30
retry_max_s = 3600

[delivery.email]
transport = "file"
from = "voucherd <alerts@localhost>"
smtp_url = "smtp://127.0.0.1:1025"
pool_size = 4
per_second = 50
timeout_s = 30
templates_dir = ""

[delivery.sms]
url = ""
api_key = ""
per_second = 10
timeout_s = 10

[delivery.push]
subject = "mailto:admin@localhost"
per_second = 50
timeout_s = 10
allow_loopback = false

[subscriptions]
max_per_user = 200

[notify]
admin_emails = []

[code_requests]
max_pending_per_customer = 5
max_per_customer_per_day = 20

[accounts]
verify_email = true
verification_link_hours = 72
fold_plus_tags = true
registrations_per_hour = 10
max_waiting_signups = 100000
max_sessions_per_user = 10
phone_code_ttl_s = 600
phone_code_tries = 5
phone_codes_per_day = 5

[orders]
payment_timeout_s = 900
max_pending_per_customer = 3
payment_secret = ""

[[networks]]
name = "demo"
kind = "csv"
url = "builtin:demo"
schedule = "0 */15 * * * *"
token = ""
account = ""
timeout_s = 30
enabled = true
"#;

/// Defaults of the keys of `[[networks]]`, `[[webhooks]]` and `[[providers]]` entries (the
/// sections' defaults are [`DEFAULTS`]): one place for every default.
mod defaults {
    pub fn poll_interval_s() -> u64 {
        10
    }

    pub fn give_up_after_s() -> u64 {
        3600
    }

    pub fn concurrency() -> u32 {
        64
    }

    pub fn webhook_timeout_s() -> u64 {
        10
    }

    pub fn timeout_s() -> u64 {
        30
    }

    pub fn enabled() -> bool {
        true
    }
}

/// A value that must not show in logs: `Debug` and `Display` print `***`. Serialised as it is
/// (a file written from settings loads back the same); [`Settings::masked`] hides them for display.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Characters in it.
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    fn masked(&self) -> Self {
        if self.0.is_empty() {
            Self::default()
        } else {
            Self::new(MASK)
        }
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// What `check-config` shows instead of a secret.
const MASK: &str = "********";

/// A cron expression with seconds (`sec min hour day month weekday`), evaluated in UTC: parsed
/// once, when the settings are read. Written back as it was given.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    parsed: cron::Schedule,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let parsed = text
            .parse::<cron::Schedule>()
            .map_err(|e| format!("`{text}` is not a cron expression: {e}"))?;
        Ok(Self {
            text: text.to_owned(),
            parsed,
        })
    }

    pub fn cron(&self) -> &cron::Schedule {
        &self.parsed
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        // Only networks have schedules: the message names the key as every other one does.
        Schedule::parse(&text)
            .map_err(|e| serde::de::Error::custom(format!("networks.schedule: {e}")))
    }
}

/// Environment variable holding the bootstrap admin's password (not a config key: never in a file).
pub const ADMIN_PASSWORD_ENV: &str = "VOUCHERD_ADMIN_PASSWORD";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub store: StoreSettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub catalogue: CatalogueSettings,
    pub digest: DigestSettings,
    pub delivery: DeliverySettings,
    pub subscriptions: SubscriptionSettings,
    pub notify: NotifySettings,
    pub code_requests: CodeRequestSettings,
    pub accounts: AccountSettings,
    pub orders: OrderSettings,
    /// One `NetworkActor` each.
    #[serde(default)]
    pub networks: Vec<NetworkSettings>,
    /// Named endpoints distributions may send codes to (never a URL from a request).
    #[serde(default)]
    pub webhooks: Vec<WebhookSettings>,
    /// Voucher-provider servers, one `ProviderActor` each.
    #[serde(default)]
    pub providers: Vec<ProviderSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free port (the bound address is logged).
    pub bind: SocketAddr,
    /// Base URL used in links sent to users (unsubscribe, callbacks). When not set, the address
    /// the server bound (`http://HOST:PORT`, a wildcard host read as 127.0.0.1).
    pub public_url: url::Url,
    /// Whether `public_url` was given (file, environment) rather than defaulted.
    #[serde(skip)]
    pub public_url_set: bool,
    pub workers: usize,
    pub body_limit_bytes: usize,
    /// Seconds a request body has to arrive whole; past it 408 and the connection closes.
    pub body_timeout_s: u64,
    /// When set, `GET /metrics` needs `Authorization: Bearer <token>` (empty: public).
    pub metrics_token: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub path: PathBuf,
    pub cache_capacity_mb: u64,
    /// After sled's flush, also fdatasync the log file so acknowledged writes survive power loss,
    /// not only the death of the process. See README "Durability".
    pub fsync: bool,
    /// Commands waiting for the one store writer; beyond it callers wait briefly, then get 503.
    pub writer_queue: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub bootstrap_admin_email: String,
    pub token_ttl_hours: u32,
    /// HMAC key for signed links; generated once and kept in the store when empty.
    pub secret: Secret,
    /// From `VOUCHERD_ADMIN_PASSWORD`, never from a file.
    #[serde(skip)]
    pub bootstrap_admin_password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Sustained requests per second per verified token (per client address otherwise).
    pub per_second: u32,
    /// Requests allowed at once before the sustained rate applies.
    pub burst: u32,
    /// Addresses or CIDR blocks (`10.0.0.0/8`) of reverse proxies whose `X-Forwarded-For` is
    /// believed; from anyone else it is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Failed logins per account per minute (a burst of as many) before 429.
    pub login_per_minute: u32,
    /// Clients (tokens, addresses, accounts) tracked at once; past it new ones share one bucket.
    pub max_clients: usize,
    /// Requests with an `Idempotency-Key` one user (or API key) may send a day; past it 429.
    pub idempotency_keys_per_day: u32,
}

impl RateLimitSettings {
    /// The trusted proxies as (network address, prefix length).
    pub fn proxies(&self) -> Result<Vec<(std::net::IpAddr, u8)>, String> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                let (addr, prefix) = match entry.split_once('/') {
                    Some((a, p)) => (a, Some(p)),
                    None => (entry.as_str(), None),
                };
                let addr: std::net::IpAddr = addr
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{entry}` is not an address or CIDR block"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix {
                    None => max,
                    Some(p) => p
                        .trim()
                        .parse::<u8>()
                        .ok()
                        .filter(|p| *p <= max)
                        .ok_or_else(|| format!("`{entry}` has a bad prefix length"))?,
                };
                Ok((addr, prefix))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueSettings {
    /// Days an expired voucher is kept (shown with `active=false`) before it is removed.
    pub retention_days: u32,
    /// Largest answer read from a network, per page; a larger one fails the pull.
    pub max_response_mb: u32,
    /// Pages one pull may read; a feed with more fails the pull (a paging loop, or a feed too
    /// large for one pull), ingesting nothing.
    pub max_pages: u32,
    /// Bytes one pull may read over all its pages (held in memory until the pull is applied).
    pub max_pull_mb: u32,
    /// Consecutive failed pulls after which a network is `failing` (and admins are notified).
    pub failing_after: u32,
    /// First wait after a failed pull; doubles per further failure (with jitter) up to `retry_max_s`.
    pub retry_base_s: u64,
    pub retry_max_s: u64,
    /// How long a cached voucher listing may be served (ingest invalidates it at once).
    pub cache_ttl_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSettings {
    /// The local hour of users who registered without one.
    pub default_hour: u8,
    /// `DigestShard` actors; each owns the users of the timezones hashed to it.
    pub shards: u16,
    /// Vouchers listed in one digest; the rest are counted as "and N more".
    pub max_vouchers: u16,
    /// The local weekday weekly digests go out on (`mon` … `sun`, or the full name).
    pub weekly_day: chrono::Weekday,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// Attempts per message; after the last failed one it is dead-lettered.
    pub max_attempts: u32,
    /// Wait after a failed attempt; doubles per further failure (with jitter) up to `retry_max_s`.
    pub retry_base_s: u64,
    pub retry_max_s: u64,
    pub email: EmailSettings,
    pub sms: SmsSettings,
    pub push: PushSettings,
}

/// Web Push: the VAPID keys are generated at first start and kept in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSettings {
    /// The VAPID `sub` claim: how a push service reaches the operator (`mailto:` or `https:`).
    pub subject: String,
    /// Messages per second at most.
    pub per_second: u32,
    /// Per request to a push service.
    pub timeout_s: u64,
    /// Whether push endpoints on this machine (`http://127.0.0.1…`) are allowed: for tests and a
    /// local relay only. Otherwise an endpoint must be `https://` to a public host.
    pub allow_loopback: bool,
}

/// The SMS gateway: a JSON `POST {url} {to, body}` with `Authorization: Bearer {api_key}` (the
/// shape most HTTP SMS gateways take). An empty `url` disables SMS.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub url: String,
    pub api_key: Secret,
    /// Messages per second at most.
    pub per_second: u32,
    /// Per request.
    pub timeout_s: u64,
}

impl SmsSettings {
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }
}

/// How email leaves: `file` writes `.eml` files under `store.path/mail`; `smtp` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailTransportKind {
    File,
    Smtp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub transport: EmailTransportKind,
    pub from: String,
    /// `smtp://` plain, `smtps://` TLS, `smtp://…?tls=required` STARTTLS; `user:pass@` allowed.
    pub smtp_url: String,
    /// Pooled SMTP connections, and the number of messages sent at once.
    pub pool_size: u32,
    /// Messages per second at most.
    pub per_second: u32,
    /// Per SMTP command.
    pub timeout_s: u64,
    /// A directory whose `digest.html`, `digest.txt`, `digest_subject.txt` or `unsubscribe.html`
    /// replace the built-in templates; empty for the built-in ones.
    pub templates_dir: String,
}

/// How an SMTP connection is secured, from the URL's scheme and `tls` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    Plain,
    /// `?tls=opportunistic`: STARTTLS when offered.
    StartTlsOpportunistic,
    /// `?tls=required`: STARTTLS or fail.
    StartTlsRequired,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// `delivery.email.smtp_url` read: `smtp://host[:port]`, `smtp://…?tls=required|opportunistic`,
/// `smtps://…`, optional `user:pass@` (percent-encoded) and an EHLO name as the path. Default
/// ports: 25, 587 with `tls`, 465 for `smtps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpEndpoint {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// (user, password)
    pub credentials: Option<(String, String)>,
    pub hello_name: Option<String>,
}

impl SmtpEndpoint {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url::Url::parse(url).map_err(|e| e.to_string())?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (SmtpSecurity::Plain, 25),
            ("smtp", Some("required")) => (SmtpSecurity::StartTlsRequired, 587),
            ("smtp", Some("opportunistic")) => (SmtpSecurity::StartTlsOpportunistic, 587),
            ("smtps", _) => (SmtpSecurity::Implicit, 465),
            (scheme, tls) => {
                return Err(format!(
                    "unknown scheme `{scheme}` or tls parameter `{tls:?}`"
                ));
            }
        };
        let host = url
            .host_str()
            .ok_or("no host")?
            .trim_matches(['[', ']'])
            .to_owned();
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Ok(Self {
            port: url.port().unwrap_or(default_port),
            host,
            security,
            credentials: url.password().map(|p| (decode(url.username()), decode(p))),
            hello_name: Some(url.path().trim_matches('/'))
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSettings {
    /// Retailers and categories one user may follow at most.
    pub max_per_user: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// Who gets admin alerts (pool low, campaign ended, network failing, delivery failing) by
    /// email; none: alerts are only listed by `GET /api/v1/notifications`.
    pub admin_emails: Vec<String>,
}

/// One voucher-provider server (a `[[providers]]` entry): voucherd asks it for codes
/// (`POST {url}/codes`), polls it (`GET {url}/codes/{request_id}`) and takes its callbacks, signed
/// with `secret`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    pub name: String,
    pub url: String,
    /// Verifies callbacks: `X-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    pub secret: Secret,
    /// Per request to the provider.
    #[serde(default = "defaults::timeout_s")]
    pub timeout_s: u64,
    /// How often an accepted request without a callback is polled.
    #[serde(default = "defaults::poll_interval_s")]
    pub poll_interval_s: u64,
    /// After this long without a code a request fails (and admins are told).
    #[serde(default = "defaults::give_up_after_s")]
    pub give_up_after_s: u64,
    /// Requests to the provider in flight at once; more wait in a queue of 16 × this, and past it
    /// the API answers 503.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: u32,
    /// What customers may ask this provider for, as the provider names it; `"*"` allows any
    /// text (only for a provider that refuses what it does not sell).
    #[serde(default)]
    pub products: Vec<String>,
}

impl ProviderSettings {
    /// Whether customers may ask for `product`: a product listed, or any under `"*"`.
    pub fn offers(&self, product: &str) -> bool {
        self.products.iter().any(|p| p == "*" || p == product)
    }

    /// Whether `product` is listed by name (not only under `"*"`): only such a name goes into a
    /// text message or a push, which reach a phone with the operator's words alone.
    pub fn lists(&self, product: &str) -> bool {
        self.products.iter().any(|p| p == product)
    }
}

/// Bounds on what one customer may ask of the providers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequestSettings {
    /// Requests of one customer waiting for a code at once; past it 429.
    pub max_pending_per_customer: u32,
    /// Requests of one customer in any 24 hours; past it 429.
    pub max_per_customer_per_day: u32,
}

/// Who an account is: how an address and a phone number are proven, and how one person stays
/// one customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    /// Self-registered accounts confirm their email address by a signed link before they can
    /// claim, order or ask for codes (double opt-in); registration then tells nobody whether an
    /// address has an account.
    pub verify_email: bool,
    /// How long a confirmation link works.
    pub verification_link_hours: u32,
    /// `ann+shop@x.org` is `ann@x.org`: one account, one customer for limits and budgets.
    pub fold_plus_tags: bool,
    /// New accounts per client address per hour (a burst of as many); past it 429.
    pub registrations_per_hour: u32,
    /// Sign-ups waiting for their link, all addresses together; past it sign-ups answer 503
    /// until some are confirmed or expire (the store and the mail sent stay bounded).
    pub max_waiting_signups: u32,
    /// Sessions one user holds at once; signing in past it ends the oldest.
    pub max_sessions_per_user: u32,
    /// How long a phone number's one-time code works.
    pub phone_code_ttl_s: u64,
    /// Wrong tries of one code before it is void.
    pub phone_code_tries: u32,
    /// Codes sent to one account in any 24 hours (each is an SMS someone pays for).
    pub phone_codes_per_day: u32,
}

/// Orders of priced codes: paid before their codes are shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSettings {
    /// How long an unpaid order holds its codes; then it expires and gives them back.
    pub payment_timeout_s: u64,
    /// Unpaid orders one customer may have at once; past it 429.
    pub max_pending_per_customer: u32,
    /// Signs payment callbacks (`POST /api/v1/payments/callback`, `X-Signature: sha256=<hex
    /// HMAC-SHA256 of the body>`); empty turns the callback off.
    pub payment_secret: Secret,
}

/// One webhook endpoint (a `[[webhooks]]` entry): a JSON POST per message, signed
/// `X-Signature: sha256=<hex HMAC-SHA256 of the body>` with `secret`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub name: String,
    pub url: String,
    pub secret: Secret,
    #[serde(default = "defaults::webhook_timeout_s")]
    pub timeout_s: u64,
}

/// One affiliate network (a `[[networks]]` entry).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    pub name: String,
    pub kind: crate::feeds::FeedKind,
    /// `https://…`, or `file://path` (relative to the working directory) for a local file.
    pub url: String,
    /// Cron expression with seconds (`sec min hour day month weekday`), evaluated in UTC.
    pub schedule: Schedule,
    #[serde(default)]
    pub token: Secret,
    #[serde(default)]
    pub account: String,
    #[serde(default = "defaults::timeout_s")]
    pub timeout_s: u64,
    #[serde(default = "defaults::enabled")]
    pub enabled: bool,
    /// csv/json only: which column or field holds each voucher field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<crate::feeds::FieldMap>,
}

impl NetworkSettings {
    /// The local path of a `file://` URL.
    pub fn file_path(&self) -> Option<PathBuf> {
        self.url.strip_prefix("file://").map(PathBuf::from)
    }

    /// Whether the feed is one document read here (a file or a built-in feed): one page.
    pub fn is_local(&self) -> bool {
        self.file_path().is_some() || self.url.starts_with("builtin:")
    }

    pub fn source(&self) -> crate::feeds::Source {
        crate::feeds::Source {
            kind: self.kind,
            url: self.url.clone(),
            token: self.token.expose().to_owned(),
            account: self.account.clone(),
            map: self.map.clone().unwrap_or_default(),
        }
    }
}

/// A name for a network, webhook or provider: 1-64 characters of a-z, 0-9, - and _.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// An `http://` or `https://` URL with a host.
fn http_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// A bad value of `key`: the message names the key.
fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// A bad value of `key` in the `[[…]]` entry of this kind (`network`, `webhook`, `provider`) and
/// name.
fn invalid_entry(
    kind: &str,
    key: &'static str,
    name: &str,
    message: impl std::fmt::Display,
) -> ConfigError {
    invalid(key, format!("{kind} `{name}`: {message}"))
}

/// Values given on the command line; they override every other layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub bind: Option<String>,
    pub store_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
}

impl Settings {
    /// Defaults only: what the binary uses with no file and no environment.
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::load_layers(None, false, &Overrides::default())
    }

    /// All layers. `file` is an explicit path (must exist); without it `./config.toml` is read
    /// when present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::load_layers(file, true, overrides)
    }

    fn load_layers(
        file: Option<&Path>,
        with_env: bool,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        if let Some(path) = file
            && !path.exists()
        {
            return Err(ConfigError::MissingFile(path.to_path_buf()));
        }
        // What the operator gave (file, environment, flags), on top of the built-in defaults.
        let given = |builder: config::ConfigBuilder<config::builder::DefaultState>| {
            let mut builder = match file {
                Some(path) => {
                    builder.add_source(config::File::from(path).format(config::FileFormat::Toml))
                }
                None if with_env => builder.add_source(
                    config::File::with_name("config.toml")
                        .format(config::FileFormat::Toml)
                        .required(false),
                ),
                None => builder,
            };
            if with_env {
                builder = builder.add_source(
                    config::Environment::with_prefix("VOUCHERD")
                        .prefix_separator("__")
                        .separator("__")
                        .try_parsing(true),
                );
            }
            if let Some(bind) = &overrides.bind {
                builder = builder.set_override("http.bind", bind.as_str())?;
            }
            if let Some(path) = &overrides.store_path {
                builder = builder.set_override("store.path", path.to_string_lossy().as_ref())?;
            }
            Ok::<_, ConfigError>(builder)
        };
        let builder = given(
            config::Config::builder()
                .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml)),
        )?;
        // Links follow the bound address unless the operator named a public URL.
        let public_url_set = given(config::Config::builder())?
            .build()?
            .get_string("http.public_url")
            .is_ok();
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.http.public_url_set = public_url_set;
        if with_env {
            settings.auth.bootstrap_admin_password = std::env::var(ADMIN_PASSWORD_ENV)
                .ok()
                .filter(|p| !p.is_empty());
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Rejects values that would only fail later, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = &self.http.public_url;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid(
                "http.public_url",
                format!("`{url}` is not an http(s) URL"),
            ));
        }
        if !(1..=64).contains(&self.http.workers) {
            return Err(invalid("http.workers", "must be between 1 and 64"));
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.http.body_limit_bytes) {
            return Err(invalid(
                "http.body_limit_bytes",
                "must be between 1024 and 67108864",
            ));
        }
        if !(1..=3600).contains(&self.http.body_timeout_s) {
            return Err(invalid("http.body_timeout_s", "must be between 1 and 3600"));
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(invalid("store.path", "must not be empty"));
        }
        if let Some(parent) = self.store.path.parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            return Err(invalid(
                "store.path",
                format!("parent directory {} does not exist", parent.display()),
            ));
        }
        if !(1..=65536).contains(&self.store.cache_capacity_mb) {
            return Err(invalid(
                "store.cache_capacity_mb",
                "must be between 1 and 65536",
            ));
        }
        if let Some(p) = &self.auth.bootstrap_admin_password
            && crate::domain::user::Password::parse(p).is_err()
        {
            return Err(invalid(
                ADMIN_PASSWORD_ENV,
                "must be 8 to 128 characters, like any password",
            ));
        }
        let cr = &self.code_requests;
        if !(1..=10_000).contains(&cr.max_pending_per_customer) {
            return Err(invalid(
                "code_requests.max_pending_per_customer",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=100_000).contains(&cr.max_per_customer_per_day) {
            return Err(invalid(
                "code_requests.max_per_customer_per_day",
                "must be between 1 and 100000",
            ));
        }
        self.validate_accounts()?;
        if !(1..=10_000).contains(&self.subscriptions.max_per_user) {
            return Err(invalid(
                "subscriptions.max_per_user",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=16_777_216).contains(&self.store.writer_queue) {
            return Err(invalid(
                "store.writer_queue",
                "must be between 1 and 16777216",
            ));
        }
        if crate::domain::user::Email::parse(&self.auth.bootstrap_admin_email).is_err() {
            return Err(invalid(
                "auth.bootstrap_admin_email",
                "is not an email address",
            ));
        }
        if !(1..=24 * 366).contains(&self.auth.token_ttl_hours) {
            return Err(invalid(
                "auth.token_ttl_hours",
                "must be between 1 and 8784",
            ));
        }
        if !self.auth.secret.is_empty() && self.auth.secret.len() < 32 {
            return Err(invalid(
                "auth.secret",
                "must be empty (generated) or at least 32 characters",
            ));
        }
        if self.rate_limit.per_second == 0 {
            return Err(invalid("rate_limit.per_second", "must be at least 1"));
        }
        if self.rate_limit.burst == 0 {
            return Err(invalid("rate_limit.burst", "must be at least 1"));
        }
        if self.rate_limit.login_per_minute == 0 {
            return Err(invalid("rate_limit.login_per_minute", "must be at least 1"));
        }
        if self.rate_limit.idempotency_keys_per_day == 0 {
            return Err(invalid(
                "rate_limit.idempotency_keys_per_day",
                "must be at least 1",
            ));
        }
        if self.rate_limit.max_clients < 100 {
            return Err(invalid("rate_limit.max_clients", "must be at least 100"));
        }
        if let Err(e) = self.rate_limit.proxies() {
            return Err(invalid("rate_limit.trusted_proxies", e));
        }
        let c = &self.catalogue;
        if !(1..=3650).contains(&c.retention_days) {
            return Err(invalid(
                "catalogue.retention_days",
                "must be between 1 and 3650",
            ));
        }
        if !(1..=100_000).contains(&c.max_pages) {
            return Err(invalid(
                "catalogue.max_pages",
                "must be between 1 and 100000",
            ));
        }
        if !(1..=16_384).contains(&c.max_pull_mb) || c.max_pull_mb < c.max_response_mb {
            return Err(invalid(
                "catalogue.max_pull_mb",
                "must be between 1 and 16384 and at least catalogue.max_response_mb",
            ));
        }
        if !(1..=1024).contains(&c.max_response_mb) {
            return Err(invalid(
                "catalogue.max_response_mb",
                "must be between 1 and 1024",
            ));
        }
        if c.failing_after == 0 {
            return Err(invalid("catalogue.failing_after", "must be at least 1"));
        }
        if c.retry_base_s == 0 || c.retry_max_s < c.retry_base_s {
            return Err(invalid(
                "catalogue.retry_base_s",
                "must be at least 1 and at most catalogue.retry_max_s",
            ));
        }
        self.validate_digest_and_delivery()?;
        self.validate_webhooks()?;
        self.validate_providers()?;
        self.validate_networks()
    }

    fn validate_accounts(&self) -> Result<(), ConfigError> {
        let a = &self.accounts;
        let ranges: [(&str, u64, u64, u64); 7] = [
            (
                "accounts.max_waiting_signups",
                a.max_waiting_signups.into(),
                1,
                10_000_000,
            ),
            (
                "accounts.verification_link_hours",
                a.verification_link_hours.into(),
                1,
                24 * 30,
            ),
            (
                "accounts.registrations_per_hour",
                a.registrations_per_hour.into(),
                1,
                100_000,
            ),
            (
                "accounts.max_sessions_per_user",
                a.max_sessions_per_user.into(),
                1,
                1_000,
            ),
            ("accounts.phone_code_ttl_s", a.phone_code_ttl_s, 60, 86_400),
            (
                "accounts.phone_code_tries",
                a.phone_code_tries.into(),
                1,
                20,
            ),
            (
                "accounts.phone_codes_per_day",
                a.phone_codes_per_day.into(),
                1,
                100,
            ),
        ];
        let o = &self.orders;
        let orders: [(&str, u64, u64, u64); 2] = [
            (
                "orders.payment_timeout_s",
                o.payment_timeout_s,
                60,
                7 * 86_400,
            ),
            (
                "orders.max_pending_per_customer",
                o.max_pending_per_customer.into(),
                1,
                1_000,
            ),
        ];
        for (key, value, low, high) in ranges.into_iter().chain(orders) {
            if !(low..=high).contains(&value) {
                return Err(invalid(key, format!("must be between {low} and {high}")));
            }
        }
        if !o.payment_secret.is_empty() && o.payment_secret.len() < 16 {
            return Err(invalid(
                "orders.payment_secret",
                "must be empty (no payment callbacks) or at least 16 characters",
            ));
        }
        Ok(())
    }

    fn validate_providers(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for p in &self.providers {
            let name = p.name.as_str();
            if !valid_name(name) {
                return Err(invalid_entry(
                    "provider",
                    "providers.name",
                    name,
                    "must be 1-64 characters of a-z, 0-9, - and _",
                ));
            }
            if !seen.insert(name) {
                return Err(invalid_entry(
                    "provider",
                    "providers.name",
                    name,
                    "is used twice",
                ));
            }
            if !http_url(&p.url) {
                return Err(invalid_entry(
                    "provider",
                    "providers.url",
                    name,
                    "must be an http(s):// URL",
                ));
            }
            if p.secret.len() < 16 {
                return Err(invalid_entry(
                    "provider",
                    "providers.secret",
                    name,
                    "must be at least 16 characters (callbacks are checked with it)",
                ));
            }
            if !(1..=600).contains(&p.timeout_s) {
                return Err(invalid_entry(
                    "provider",
                    "providers.timeout_s",
                    name,
                    "must be between 1 and 600",
                ));
            }
            if p.poll_interval_s == 0 || p.give_up_after_s < p.poll_interval_s {
                return Err(invalid_entry(
                    "provider",
                    "providers.poll_interval_s",
                    name,
                    "must be at least 1 and at most give_up_after_s",
                ));
            }
            if p.products.is_empty() {
                return Err(invalid_entry(
                    "provider",
                    "providers.products",
                    name,
                    "list what customers may ask for (\"*\" for any text)",
                ));
            }
            if p.products
                .iter()
                .any(|x| crate::domain::bounded_text("product", x, 200).is_err())
            {
                return Err(invalid_entry(
                    "provider",
                    "providers.products",
                    name,
                    "each product is 1 to 200 characters without control characters",
                ));
            }
            if !(1..=4096).contains(&p.concurrency) {
                return Err(invalid_entry(
                    "provider",
                    "providers.concurrency",
                    name,
                    "must be between 1 and 4096",
                ));
            }
        }
        Ok(())
    }

    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for w in &self.webhooks {
            let name = w.name.as_str();
            if !valid_name(name) {
                return Err(invalid_entry(
                    "webhook",
                    "webhooks.name",
                    name,
                    "must be 1-64 characters of a-z, 0-9, - and _",
                ));
            }
            if !seen.insert(name) {
                return Err(invalid_entry(
                    "webhook",
                    "webhooks.name",
                    name,
                    "is used twice",
                ));
            }
            if !http_url(&w.url) {
                return Err(invalid_entry(
                    "webhook",
                    "webhooks.url",
                    name,
                    "must be an http(s):// URL",
                ));
            }
            if w.secret.len() < 16 {
                return Err(invalid_entry(
                    "webhook",
                    "webhooks.secret",
                    name,
                    "must be at least 16 characters (the receiver checks the signature with it)",
                ));
            }
            if !(1..=600).contains(&w.timeout_s) {
                return Err(invalid_entry(
                    "webhook",
                    "webhooks.timeout_s",
                    name,
                    "must be between 1 and 600",
                ));
            }
        }
        Ok(())
    }

    fn validate_digest_and_delivery(&self) -> Result<(), ConfigError> {
        let d = &self.digest;
        if d.default_hour > 23 {
            return Err(invalid(
                "digest.default_hour",
                "must be an hour from 0 to 23",
            ));
        }
        if !(1..=256).contains(&d.shards) {
            return Err(invalid("digest.shards", "must be between 1 and 256"));
        }
        if !(1..=500).contains(&d.max_vouchers) {
            return Err(invalid("digest.max_vouchers", "must be between 1 and 500"));
        }
        let del = &self.delivery;
        if !(1..=100).contains(&del.max_attempts) {
            return Err(invalid(
                "delivery.max_attempts",
                "must be between 1 and 100",
            ));
        }
        if del.retry_base_s == 0 || del.retry_max_s < del.retry_base_s {
            return Err(invalid(
                "delivery.retry_base_s",
                "must be at least 1 and at most delivery.retry_max_s",
            ));
        }
        let e = &del.email;
        if e.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "delivery.email.from",
                format!(
                    "`{}` is not a mailbox such as `voucherd <alerts@example.org>`",
                    e.from
                ),
            ));
        }
        if e.transport == EmailTransportKind::Smtp && SmtpEndpoint::parse(&e.smtp_url).is_err() {
            return Err(invalid(
                "delivery.email.smtp_url",
                "is not an smtp:// or smtps:// URL",
            ));
        }
        if !(1..=256).contains(&e.pool_size) {
            return Err(invalid(
                "delivery.email.pool_size",
                "must be between 1 and 256",
            ));
        }
        if e.per_second == 0 {
            return Err(invalid("delivery.email.per_second", "must be at least 1"));
        }
        if !(1..=600).contains(&e.timeout_s) {
            return Err(invalid(
                "delivery.email.timeout_s",
                "must be between 1 and 600",
            ));
        }
        let sms = &del.sms;
        if sms.enabled() && !http_url(&sms.url) {
            return Err(invalid(
                "delivery.sms.url",
                "must be an http(s):// URL, or empty",
            ));
        }
        if sms.per_second == 0 {
            return Err(invalid("delivery.sms.per_second", "must be at least 1"));
        }
        if !(1..=600).contains(&sms.timeout_s) {
            return Err(invalid(
                "delivery.sms.timeout_s",
                "must be between 1 and 600",
            ));
        }
        let push = &del.push;
        if !(push.subject.starts_with("mailto:") || push.subject.starts_with("https://")) {
            return Err(invalid(
                "delivery.push.subject",
                "must be a mailto: or https:// URI (push services use it to reach you)",
            ));
        }
        if push.per_second == 0 {
            return Err(invalid("delivery.push.per_second", "must be at least 1"));
        }
        if !(1..=600).contains(&push.timeout_s) {
            return Err(invalid(
                "delivery.push.timeout_s",
                "must be between 1 and 600",
            ));
        }
        if !e.templates_dir.is_empty() && !Path::new(&e.templates_dir).is_dir() {
            return Err(invalid(
                "delivery.email.templates_dir",
                format!("{} is not a directory", e.templates_dir),
            ));
        }
        for a in &self.notify.admin_emails {
            if crate::domain::user::Email::parse(a).is_err() {
                return Err(invalid(
                    "notify.admin_emails",
                    format!("`{a}` is not an email address"),
                ));
            }
        }
        Ok(())
    }

    fn validate_networks(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for n in &self.networks {
            let name = n.name.as_str();
            if !valid_name(name) {
                return Err(invalid_entry(
                    "network",
                    "networks.name",
                    name,
                    "must be 1-64 characters of a-z, 0-9, - and _",
                ));
            }
            if !seen.insert(name) {
                return Err(invalid_entry(
                    "network",
                    "networks.name",
                    name,
                    "is used twice",
                ));
            }
            if !(1..=600).contains(&n.timeout_s) {
                return Err(invalid_entry(
                    "network",
                    "networks.timeout_s",
                    name,
                    "must be between 1 and 600",
                ));
            }
            if n.map.is_some() && !n.kind.is_mapped() {
                return Err(invalid_entry(
                    "network",
                    "networks.map",
                    name,
                    format!(
                        "only csv and json networks take a map, not {}",
                        n.kind.as_str()
                    ),
                ));
            }
            if let Some(feed) = n.url.strip_prefix("builtin:") {
                if !crate::feeds::is_builtin(feed) {
                    return Err(invalid_entry(
                        "network",
                        "networks.url",
                        name,
                        format!("there is no built-in feed `{feed}` (there is `demo`)"),
                    ));
                }
                continue;
            }
            match n.file_path() {
                Some(path) => {
                    if n.enabled && !path.is_file() {
                        return Err(invalid_entry(
                            "network",
                            "networks.url",
                            name,
                            format!("{} is not a readable file", path.display()),
                        ));
                    }
                }
                None => {
                    let ok = url::Url::parse(&n.url).is_ok_and(|u| {
                        matches!(u.scheme(), "http" | "https") && u.host().is_some()
                    });
                    if !ok {
                        return Err(invalid_entry(
                            "network",
                            "networks.url",
                            name,
                            format!("`{}` is not an http(s), file:// or builtin: URL", n.url),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// These settings with every secret shown as `********`, and so is whatever a URL carries
    /// for authentication (SMTP, networks, SMS, webhooks, providers): its user and password
    /// (`https://TOKEN@host`, `https://SID:@host`, `smtp://user:pass@host`) and the values of
    /// query parameters named like a secret (`?api_key=`, `?token=`, `?sig=`, …).
    pub fn masked(&self) -> Self {
        fn mask_password(text: &mut String) {
            if let Some(masked) = masked_url(text) {
                *text = masked;
            }
        }
        let mut shown = self.clone();
        shown.auth.secret = shown.auth.secret.masked();
        shown.http.metrics_token = shown.http.metrics_token.masked();
        mask_password(&mut shown.delivery.email.smtp_url);
        for n in &mut shown.networks {
            n.token = n.token.masked();
            mask_password(&mut n.url);
        }
        shown.orders.payment_secret = shown.orders.payment_secret.masked();
        shown.delivery.sms.api_key = shown.delivery.sms.api_key.masked();
        mask_password(&mut shown.delivery.sms.url);
        for w in &mut shown.webhooks {
            w.secret = w.secret.masked();
            mask_password(&mut w.url);
        }
        for p in &mut shown.providers {
            p.secret = p.secret.masked();
            mask_password(&mut p.url);
        }
        shown
    }

    /// The effective settings as TOML with secrets masked (for `voucherd check-config`): a file
    /// that loads back to the same settings, but for the masks.
    pub fn to_masked_toml(&self) -> String {
        self.masked().to_toml()
    }

    /// The settings as a TOML file (secrets included).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# not shown: {e}\n"))
    }
}

/// Whether a query parameter named `name` carries a credential.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "pass",
        "pwd",
        "sig",
        "auth",
        "credential",
        "session",
        "sid",
        "jwt",
        "bearer",
        "hash",
        "otp",
        "pin",
        "cookie",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// `text` as a URL with its credentials masked, when it is a URL carrying any.
fn masked_url(text: &str) -> Option<String> {
    let mut url = url::Url::parse(text).ok()?;
    let mut changed = false;
    if !url.username().is_empty() {
        changed |= url.set_username(MASK).is_ok();
    }
    if url.password().is_some() {
        changed |= url.set_password(Some(MASK)).is_ok();
    }
    // A fragment never reaches the server it names; what it holds is shown to nobody.
    if url.fragment().is_some_and(|f| !f.is_empty()) {
        url.set_fragment(Some(MASK));
        changed = true;
    }
    if url.query().is_some() {
        let mut secret = false;
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let hide = is_secret_name(&k) && !v.is_empty();
                secret |= hide;
                (
                    k.into_owned(),
                    if hide {
                        MASK.to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        if secret {
            url.query_pairs_mut().clear().extend_pairs(pairs);
            changed = true;
        }
    }
    changed.then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_masked_wherever_they_sit() {
        for (given, hidden) in [
            ("https://TOKEN123@api.example/feed", "TOKEN123"),
            ("https://AC0123456789:@api.example/sms", "AC0123456789"),
            ("smtp://user:hunter2@mail.example:587", "hunter2"),
            ("https://api.example/feed?api_key=K3Y&page=2", "K3Y"),
            ("https://api.example/feed?token=T0K", "T0K"),
            ("https://api.example/feed?access_token=T0K&sig=S1G", "S1G"),
            ("https://api.example/feed?jwt=J1&bearer=B1", "J1"),
            ("https://api.example/feed?jwt=J1&bearer=B1", "B1"),
            ("https://api.example/feed#frag=F1", "F1"),
        ] {
            let masked = masked_url(given).expect(given);
            assert!(!masked.contains(hidden), "{given} shows as {masked}");
        }
        assert_eq!(
            masked_url("https://api.example/feed?page=2&sig=S1G").unwrap(),
            "https://api.example/feed?page=2&sig=********"
        );
        assert_eq!(masked_url("https://api.example/feed?page=2"), None);
        assert_eq!(masked_url("builtin:demo"), None);
    }

    #[test]
    fn embedded_defaults_are_valid() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.http.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.rate_limit.burst, 100);
    }

    #[test]
    fn repository_config_file_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let from_file = Settings::load_layers(Some(&path), false, &Overrides::default()).unwrap();
        let defaults = Settings::defaults().unwrap();
        assert_eq!(
            serde_json::to_value(&from_file).unwrap(),
            serde_json::to_value(&defaults).unwrap()
        );
    }

    #[test]
    fn links_follow_the_bound_address_unless_a_public_url_is_given() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let from_file = Settings::load_layers(Some(&path), false, &Overrides::default()).unwrap();
        assert!(!from_file.http.public_url_set);
        let dir = tempfile::tempdir().unwrap();
        let given = dir.path().join("c.toml");
        std::fs::write(
            &given,
            "[http]\npublic_url = \"https://vouchers.example.com\"\n",
        )
        .unwrap();
        let s = Settings::load_layers(Some(&given), false, &Overrides::default()).unwrap();
        assert!(s.http.public_url_set);
        assert_eq!(s.http.public_url.as_str(), "https://vouchers.example.com/");
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[http]\nbindd = \"1.2.3.4:1\"\n").unwrap();
        let err = Settings::load_layers(Some(&path), false, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("bindd"), "{err}");
    }

    #[test]
    fn invalid_value_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[http]\nbind = \"nowhere\"\n").unwrap();
        let err = Settings::load_layers(Some(&path), false, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("http.bind"), "{err}");
    }

    #[test]
    fn weekly_day_takes_short_or_long_names_and_names_the_key_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[digest]\nweekly_day = \"Wednesday\"\n").unwrap();
        let s = Settings::load_layers(Some(&path), false, &Overrides::default()).unwrap();
        assert_eq!(s.digest.weekly_day, chrono::Weekday::Wed);
        std::fs::write(&path, "[digest]\nweekly_day = \"funday\"\n").unwrap();
        let err = Settings::load_layers(Some(&path), false, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("digest.weekly_day"), "{err}");
    }

    #[test]
    fn flags_override_files() {
        let overrides = Overrides {
            bind: Some("127.0.0.1:0".into()),
            store_path: None,
        };
        let s = Settings::load_layers(None, false, &overrides).unwrap();
        assert_eq!(s.http.bind.to_string(), "127.0.0.1:0");
    }

    #[test]
    fn secrets_are_masked() {
        let mut s = Settings::defaults().unwrap();
        s.auth.secret = Secret::new("x".repeat(40));
        s.delivery.email.smtp_url = "smtp://mailer:smtp-pass@mail.example:2525".into();
        s.delivery.sms.url = "https://sms:sms-pass@sms.example/send".into();
        if let Some(n) = s.networks.first_mut() {
            n.url = "https://feed:feed-pass@feeds.example/vouchers.csv".into();
        }
        let shown = s.to_masked_toml();
        assert!(!shown.contains(&"x".repeat(40)));
        assert!(shown.contains("********"));
        for password in ["smtp-pass", "sms-pass", "feed-pass"] {
            assert!(!shown.contains(password), "{password} shows in {shown}");
        }
        assert!(
            shown.contains("https://********:********@sms.example/send"),
            "{shown}"
        );
    }

    /// What `check-config` prints is a configuration file that loads back to the same settings:
    /// the defaults, settings with no networks (whose `networks = []` once landed under a table),
    /// and settings with an entry of every kind.
    #[test]
    fn printed_settings_load_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let defaults = Settings::defaults().unwrap();
        let mut none = defaults.clone();
        none.networks.clear();
        let mut every = defaults.clone();
        every.auth.secret = Secret::new("s".repeat(40));
        every.networks[0].token = Secret::new("network-token");
        every.webhooks = vec![WebhookSettings {
            name: "shop".into(),
            url: "https://shop.example/hooks".into(),
            secret: Secret::new("webhook-secret-0123"),
            timeout_s: 5,
        }];
        every.providers = vec![ProviderSettings {
            name: "vps".into(),
            url: "https://vps.example".into(),
            secret: Secret::new("provider-secret-0123"),
            timeout_s: 30,
            poll_interval_s: 10,
            give_up_after_s: 3600,
            concurrency: 8,
            products: vec!["gift-card-10".into()],
        }];
        every.delivery.email.smtp_url = "smtp://user:pass@mail.example:2525".into();
        for settings in [defaults, none, every] {
            let text = settings.to_toml();
            std::fs::write(&path, &text).unwrap();
            let loaded = Settings::load_layers(Some(&path), false, &Overrides::default())
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(
                serde_json::to_value(&loaded).unwrap(),
                serde_json::to_value(&settings).unwrap(),
                "{text}"
            );
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut s = Settings::defaults().unwrap();
        s.auth.secret = Secret::new("x".repeat(40));
        s.networks[0].token = Secret::new("network-token");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("xxxx") && !shown.contains("network-token"),
            "{shown}"
        );
        assert!(shown.contains("***"));
    }

    #[test]
    fn a_file_listing_networks_replaces_the_demo() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[[networks]]\nname = \"shop\"\nkind = \"json\"\nurl = \"https://shop.example/feed\"\n\
             schedule = \"0 0 * * * *\"\nmap = { external_id = \"ref\" }\n",
        )
        .unwrap();
        let s = Settings::load_layers(Some(&path), false, &Overrides::default()).unwrap();
        assert_eq!(s.networks.len(), 1);
        let n = &s.networks[0];
        assert_eq!(n.name, "shop");
        assert_eq!(n.timeout_s, 30);
        assert!(n.enabled);
        let map = n.map.clone().unwrap();
        assert_eq!(map.external_id, "ref");
        assert_eq!(
            map.retailer, "retailer",
            "unmapped fields keep their defaults"
        );

        std::fs::write(&path, "networks = []\n").unwrap();
        let s = Settings::load_layers(Some(&path), false, &Overrides::default()).unwrap();
        assert!(s.networks.is_empty());
    }

    #[test]
    fn bad_networks_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let cases = [
            ("schedule = \"every day\"", "networks.schedule"),
            ("schedule = \"0 0 * * * *\"\nurl2 = \"x\"", "url2"),
            (
                "schedule = \"0 0 * * * *\"\ntimeout_s = 0",
                "networks.timeout_s",
            ),
        ];
        for (extra, key) in cases {
            std::fs::write(
                &path,
                format!("[[networks]]\nname = \"n\"\nkind = \"awin\"\nurl = \"https://a.example\"\n{extra}\n"),
            )
            .unwrap();
            let err = Settings::load_layers(Some(&path), false, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
        std::fs::write(
            &path,
            "[[networks]]\nname = \"n\"\nkind = \"csv\"\nurl = \"file:///no/such/file.csv\"\nschedule = \"0 0 * * * *\"\n",
        )
        .unwrap();
        let err = Settings::load_layers(Some(&path), false, &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("networks.url"), "{err}");
    }
}
