//! Users: the validated pieces of a registration and the stored record.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::ValidationError;

/// An email address: one `@`, a non-empty local part and a domain of dot-separated labels.
/// Kept as given; compared and indexed case-folded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let err = |m: &str| ValidationError::new("email", m);
        let s = raw.trim();
        if s.len() > Self::MAX_LEN {
            return Err(err("must be at most 254 characters"));
        }
        let (local, domain) = s
            .split_once('@')
            .ok_or_else(|| err("is not an email address"))?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let domain_ok = !domain.is_empty()
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(err("is not an email address"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as shown to whoever holds a link (the unsubscribe page): enough for its owner
    /// to recognise it, too little to harvest: `j***@e***.com`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
        let tld = domain
            .rsplit_once('.')
            .map(|(_, t)| format!(".{t}"))
            .unwrap_or_default();
        format!("{}***@{}***{tld}", first(local), first(domain))
    }

    /// The form used for uniqueness and lookup.
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The person behind the address: case-folded and, with `fold_plus_tags`, without a
    /// `+tag` in the local part (`Ann+shop@Example.org` is `ann@example.org`): one person, one
    /// account, one customer for limits and budgets.
    pub fn person(&self, fold_plus_tags: bool) -> String {
        person_key(&self.0, fold_plus_tags)
    }
}

/// [`Email::person`] of an address already known to parse.
fn person_key(address: &str, fold_plus_tags: bool) -> String {
    let folded = address.trim().to_ascii_lowercase();
    match folded.split_once('@') {
        Some((local, domain)) if fold_plus_tags => {
            let local = local.split_once('+').map_or(local, |(l, _)| l);
            if local.is_empty() {
                folded
            } else {
                format!("{local}@{domain}")
            }
        }
        _ => folded,
    }
}

/// A shop's reference as kept and compared. One that holds an address (itself, or wrapped by a
/// name and angle brackets or `mailto:`; compatibility-normalised, so full-width letters and `＠`
/// read as ASCII; a quoted local part unquoted, a trailing dot dropped, an international domain
/// in its ASCII form) is that address's person, and the address when it is one a user could have;
/// a user id is kept in its one spelling; anything else is kept trimmed, as the shop's own key.
pub fn reference_person(given: &str, fold: bool) -> (String, Option<Email>) {
    use unicode_normalization::UnicodeNormalization as _;
    let given = given.trim();
    let normal: String = given.nfkc().collect();
    if let Some((local, domain)) = address_in(&normal) {
        let domain = match url::Host::parse(&domain) {
            Ok(url::Host::Domain(ascii)) => ascii,
            _ => domain.to_lowercase(),
        };
        let address = format!("{local}@{domain}");
        return match Email::parse(&address) {
            Ok(email) => (email.person(fold), Some(email)),
            // An address no account can have (letters beyond ASCII before the `@`): its person
            // all the same, case-folded.
            Err(_) => (unicode_person(&address, fold), None),
        };
    }
    match uuid::Uuid::parse_str(given) {
        Ok(id) => (id.to_string(), None),
        Err(_) => (given.to_owned(), None),
    }
}

/// The address a reference reads as, split at its `@`: one `@` with something before it and a
/// dotted domain after it, no spaces; what angle brackets wrap (after a display name) or what
/// follows `mailto:`; a quoted local part unquoted, a domain's trailing dots dropped.
fn address_in(reference: &str) -> Option<(String, String)> {
    let mut s = reference;
    if let (Some(open), Some(close)) = (s.rfind('<'), s.rfind('>'))
        && open < close
    {
        s = &s[open + 1..close];
    }
    let s = s.trim();
    let s = match s.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mailto:") => &s[7..],
        _ => s,
    };
    if s.chars().any(char::is_whitespace) {
        return None;
    }
    let (local, domain) = s.rsplit_once('@')?;
    let local = local
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(local);
    let domain = domain.trim_end_matches('.');
    let dotted = domain.contains('.') && !domain.starts_with('.') && !domain.contains("..");
    if local.is_empty() || local.contains('@') || !dotted {
        return None;
    }
    Some((local.to_owned(), domain.to_owned()))
}

/// The person behind an address with letters beyond ASCII: lower-cased, and without its
/// `+tag` when folding.
fn unicode_person(address: &str, fold: bool) -> String {
    let lower = address.to_lowercase();
    match lower.split_once('@') {
        Some((local, domain)) if fold => match local.split_once('+') {
            Some((person, _)) if !person.is_empty() => format!("{person}@{domain}"),
            _ => lower.clone(),
        },
        _ => lower,
    }
}

/// A phone number in E.164: `+`, a non-zero digit, at most 15 digits in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        let digits = s.strip_prefix('+').unwrap_or("");
        let ok = (2..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0');
        if !ok {
            return Err(ValidationError::new(
                "phone",
                "must be E.164: + and 2 to 15 digits, e.g. +4915112345678",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IANA timezone name (`Europe/Paris`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timezone(pub chrono_tz::Tz);

impl Timezone {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        chrono_tz::Tz::from_str(raw.trim()).map(Self).map_err(|_| {
            ValidationError::new(
                "timezone",
                "is not an IANA timezone name such as Europe/Paris",
            )
        })
    }
}

impl fmt::Display for Timezone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl Serialize for Timezone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timezone::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The local hour (0-23) at which a user's digest is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DigestHour(u8);

impl DigestHour {
    pub fn parse(hour: i64) -> Result<Self, ValidationError> {
        u8::try_from(hour)
            .ok()
            .filter(|h| *h < 24)
            .map(Self)
            .ok_or_else(|| ValidationError::new("digest_hour", "must be an hour from 0 to 23"))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for DigestHour {
    fn default() -> Self {
        Self(8)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DigestFrequency {
    #[default]
    Daily,
    Weekly,
    Off,
}

/// Roles nest: admin ⊃ manager ⊃ customer (the derived order says so).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Manager,
    Admin,
}

impl Role {
    pub fn includes(self, needed: Role) -> bool {
        self >= needed
    }
}

/// A password as typed: 8 to 128 characters. Never stored; only its argon2id hash is.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let n = raw.chars().count();
        if !(8..=128).contains(&n) {
            return Err(ValidationError::new(
                "password",
                "must be 8 to 128 characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The stored user record. `v` is the record version; fields added later carry `#[serde(default)]`
/// so records written by an older build still decode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub v: u16,
    pub id: Uuid,
    pub email: Email,
    pub password_hash: String,
    #[serde(default)]
    pub phone: Option<Phone>,
    pub timezone: Timezone,
    #[serde(default)]
    pub digest_hour: DigestHour,
    #[serde(default)]
    pub digest_frequency: DigestFrequency,
    pub role: Role,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::times::micros")]
    pub updated_at: DateTime<Utc>,
    /// When they opted out of marketing email (codes sent by distributions, digests aside):
    /// `None` while they receive it.
    /// (`default`: the JSON records of the first release have none.)
    #[serde(default, with = "crate::domain::times::micros_opt")]
    pub marketing_opt_out_at: Option<DateTime<Utc>>,
    /// When the address in `email` was confirmed: its owner opened the link sent to it, or a
    /// manager made the account. `None` until then.
    #[serde(default, with = "crate::domain::times::micros_opt")]
    pub email_verified_at: Option<DateTime<Utc>>,
    /// An address asked for in place of `email`, waiting for its owner to confirm it.
    #[serde(default)]
    pub pending_email: Option<Email>,
    /// When `phone` was proven by a one-time code sent to it. Until then the number is only
    /// what the customer typed: it reserves nothing, and nothing is sent to it.
    #[serde(default, with = "crate::domain::times::micros_opt")]
    pub phone_verified_at: Option<DateTime<Utc>>,
    /// The latest one-time code sent to prove a number, and when codes were sent lately.
    #[serde(default)]
    pub phone_challenge: Option<PhoneChallenge>,
}

impl User {
    pub const VERSION: u16 = 3;

    /// Whether distributions by email may write to them.
    pub fn takes_marketing_email(&self) -> bool {
        self.marketing_opt_out_at.is_none()
    }

    pub fn email_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }

    /// The number proven to be theirs, if any: the one SMS go to and a till finds them by.
    pub fn verified_phone(&self) -> Option<&Phone> {
        self.phone
            .as_ref()
            .filter(|_| self.phone_verified_at.is_some())
    }
}

/// A one-time code sent by SMS to prove a phone number is the account's: which number, until
/// when it may be entered and how many wrong tries are left. The code itself is stored nowhere:
/// it is an HMAC of the challenge's id, the account and the number under the server's secret,
/// worked out again when it is sent and when it is entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneChallenge {
    pub id: Uuid,
    pub phone: Phone,
    #[serde(with = "crate::domain::times::micros")]
    pub expires_at: DateTime<Utc>,
    pub tries_left: u32,
    /// When codes were sent in the last 24 hours (µs since the epoch), for the daily cap.
    pub sent_at: Vec<i64>,
}

/// Why a phone code is not sent or not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneRefusal {
    #[error("as many codes as allowed were sent in the last 24 hours; try again later")]
    TooManySent,
    #[error("no code was sent to this number, or it has expired or been used: ask for a new one")]
    NoCode,
    #[error("the code is wrong")]
    Wrong,
}

impl PhoneChallenge {
    /// A new code for `phone` after `previous`, unless `per_day` were sent in the last 24 hours.
    pub fn start(
        previous: Option<&PhoneChallenge>,
        phone: Phone,
        id: Uuid,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
        tries: u32,
        per_day: u32,
    ) -> Result<Self, PhoneRefusal> {
        let day_ago = (now - chrono::Duration::days(1)).timestamp_micros();
        let mut sent_at: Vec<i64> = previous
            .map(|p| p.sent_at.iter().copied().filter(|t| *t > day_ago).collect())
            .unwrap_or_default();
        if sent_at.len() >= per_day as usize {
            return Err(PhoneRefusal::TooManySent);
        }
        sent_at.push(now.timestamp_micros());
        Ok(Self {
            id,
            phone,
            expires_at: now + ttl,
            tries_left: tries,
            sent_at,
        })
    }

    /// Whether a code may be entered now.
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.tries_left > 0 && now < self.expires_at
    }

    /// An entered code, `right` or not: the number it proves, or why not. A wrong one uses a
    /// try; the right one voids the challenge (each code proves once).
    pub fn answer(&mut self, right: bool, now: DateTime<Utc>) -> Result<Phone, PhoneRefusal> {
        if !self.is_open(now) {
            return Err(PhoneRefusal::NoCode);
        }
        if right {
            self.tries_left = 0;
            Ok(self.phone.clone())
        } else {
            self.tries_left -= 1;
            Err(PhoneRefusal::Wrong)
        }
    }
}

/// What a change to a user may touch. `None` leaves a field as it is; `phone: Some(None)` clears it.
/// A new `email` or `phone` is unconfirmed unless the change confirms it too
/// (`email_verified_at`, `phone_verified_at`).
#[derive(Debug, Default)]
pub struct UserChanges {
    pub email: Option<Email>,
    pub email_verified_at: Option<Option<DateTime<Utc>>>,
    pub pending_email: Option<Option<Email>>,
    pub phone: Option<Option<Phone>>,
    pub phone_verified_at: Option<Option<DateTime<Utc>>>,
    pub phone_challenge: Option<Option<PhoneChallenge>>,
    pub timezone: Option<Timezone>,
    pub digest_hour: Option<DigestHour>,
    pub digest_frequency: Option<DigestFrequency>,
    pub role: Option<Role>,
    pub password_hash: Option<String>,
    /// `false` opts out of marketing email, `true` opts back in.
    pub marketing_emails: Option<bool>,
}

impl UserChanges {
    /// Applies the changes; returns whether anything changed.
    pub fn apply(&self, user: &mut User, now: DateTime<Utc>) -> bool {
        let before = user.clone();
        if let Some(e) = &self.email {
            if e.folded() != user.email.folded() {
                user.email_verified_at = None;
            }
            user.email = e.clone();
        }
        if let Some(at) = self.email_verified_at {
            user.email_verified_at = at;
        }
        if let Some(p) = &self.pending_email {
            user.pending_email = p.clone();
        }
        if let Some(p) = &self.phone {
            if *p != user.phone {
                user.phone_verified_at = None;
            }
            user.phone = p.clone();
        }
        if let Some(at) = self.phone_verified_at {
            user.phone_verified_at = at;
        }
        if let Some(c) = &self.phone_challenge {
            user.phone_challenge = c.clone();
        }
        if let Some(tz) = self.timezone {
            user.timezone = tz;
        }
        if let Some(h) = self.digest_hour {
            user.digest_hour = h;
        }
        if let Some(f) = self.digest_frequency {
            user.digest_frequency = f;
        }
        if let Some(r) = self.role {
            user.role = r;
        }
        if let Some(h) = &self.password_hash {
            user.password_hash = h.clone();
        }
        match self.marketing_emails {
            Some(true) => user.marketing_opt_out_at = None,
            Some(false) if user.marketing_opt_out_at.is_none() => {
                user.marketing_opt_out_at = Some(now);
            }
            _ => {}
        }
        let changed = *user != before;
        if changed {
            user.updated_at = now;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_addresses_show_too_little_to_harvest() {
        let masked = |s: &str| Email::parse(s).unwrap().masked();
        assert_eq!(masked("jane.doe@example.co.uk"), "j***@e***.uk");
        assert_eq!(masked("Admin@localhost"), "A***@l***");
        assert!(!masked("bob@mail.example.org").contains("bob"));
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "Admin@localhost", "x.y+z@mail.example.org"] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "@b.co",
            "a@",
            "a@b..co",
            "a b@c.d",
            "a@-b.co",
            "a@b.co\n@x",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@b.co", "a".repeat(300))).is_err());
        assert_eq!(Email::parse("A@B.Co").unwrap().folded(), "a@b.co");
    }

    #[test]
    fn one_person_whatever_the_case_or_tag() {
        let person = |s: &str, fold| Email::parse(s).unwrap().person(fold);
        assert_eq!(person("Ann+shop@Example.org", true), "ann@example.org");
        assert_eq!(person("ann@example.org", true), "ann@example.org");
        assert_eq!(
            person("Ann+shop@Example.org", false),
            "ann+shop@example.org"
        );
        // A local part that is all tag stays as it is.
        assert_eq!(person("+x@example.org", true), "+x@example.org");
    }

    #[test]
    fn a_new_address_or_number_is_unconfirmed_until_proven() {
        let at: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let mut u = sample(at);
        u.email_verified_at = Some(at);
        u.phone = Some(Phone::parse("+4915112345678").unwrap());
        u.phone_verified_at = Some(at);
        let same = UserChanges {
            email: Some(Email::parse("ANN@example.org").unwrap()),
            phone: Some(Some(Phone::parse("+4915112345678").unwrap())),
            ..UserChanges::default()
        };
        same.apply(&mut u, at);
        assert!(u.email_verified() && u.verified_phone().is_some());
        let other = UserChanges {
            email: Some(Email::parse("bob@example.org").unwrap()),
            phone: Some(Some(Phone::parse("+4915100000000").unwrap())),
            ..UserChanges::default()
        };
        other.apply(&mut u, at);
        assert!(!u.email_verified());
        assert_eq!(u.verified_phone(), None);
    }

    pub(crate) fn sample(at: DateTime<Utc>) -> User {
        User {
            v: User::VERSION,
            id: Uuid::now_v7(),
            email: Email::parse("ann@example.org").unwrap(),
            password_hash: String::new(),
            phone: None,
            timezone: Timezone::parse("UTC").unwrap(),
            digest_hour: DigestHour::default(),
            digest_frequency: DigestFrequency::Daily,
            role: Role::Customer,
            created_at: at,
            updated_at: at,
            marketing_opt_out_at: None,
            email_verified_at: None,
            pending_email: None,
            phone_verified_at: None,
            phone_challenge: None,
        }
    }

    #[test]
    fn a_phone_code_is_bounded_in_tries_time_and_sends() {
        let at: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let phone = Phone::parse("+4915112345678").unwrap();
        let ttl = chrono::Duration::minutes(10);
        let start = |prev: Option<&PhoneChallenge>, t| {
            PhoneChallenge::start(prev, phone.clone(), Uuid::now_v7(), t, ttl, 3, 2)
        };
        let mut c = start(None, at).unwrap();
        assert_eq!(c.answer(false, at), Err(PhoneRefusal::Wrong));
        assert_eq!(c.answer(false, at), Err(PhoneRefusal::Wrong));
        assert_eq!(
            c.answer(true, at + ttl),
            Err(PhoneRefusal::NoCode),
            "expired"
        );
        assert_eq!(c.answer(true, at), Ok(phone.clone()));
        assert_eq!(c.answer(true, at), Err(PhoneRefusal::NoCode), "used once");
        let mut tried = start(None, at).unwrap();
        for _ in 0..3 {
            assert_eq!(tried.answer(false, at), Err(PhoneRefusal::Wrong));
        }
        assert_eq!(
            tried.answer(true, at),
            Err(PhoneRefusal::NoCode),
            "out of tries"
        );
        // Two sends a day, then none until the first is a day old.
        let second = start(Some(&c), at + chrono::Duration::hours(1)).unwrap();
        assert_eq!(
            start(Some(&second), at + chrono::Duration::hours(2)),
            Err(PhoneRefusal::TooManySent)
        );
        assert!(start(Some(&second), at + chrono::Duration::hours(25)).is_ok());
    }

    #[test]
    fn phones() {
        assert!(Phone::parse("+4915112345678").is_ok());
        for bad in [
            "4915112345678",
            "+0123",
            "+1",
            "+1234567890123456",
            "+49 151",
            "",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timezones_and_hours() {
        assert_eq!(
            Timezone::parse("Asia/Kolkata").unwrap().to_string(),
            "Asia/Kolkata"
        );
        assert!(Timezone::parse("Mars/Olympus").is_err());
        assert!(DigestHour::parse(23).is_ok());
        assert!(DigestHour::parse(24).is_err());
        assert!(DigestHour::parse(-1).is_err());
    }

    #[test]
    fn roles_nest() {
        assert!(Role::Admin.includes(Role::Manager));
        assert!(Role::Manager.includes(Role::Customer));
        assert!(!Role::Customer.includes(Role::Manager));
    }

    #[test]
    fn a_reference_names_the_address_it_holds_however_it_is_written() {
        let person = |r: &str| reference_person(r, true).0;
        for spelling in [
            "ann@example.org",
            " Ann+shop@Example.org ",
            "Ann <ann@example.org>",
            "mailto:ANN@example.org",
            "\"ann\"@example.org",
            "ann@example.org.",
            "\u{ff41}nn@example.org",
            "ann\u{ff20}example.org",
            "ann@EXAMPLE.org\u{a0}",
        ] {
            assert_eq!(person(spelling), "ann@example.org", "{spelling:?}");
        }
        // An international domain is its ASCII form; a local part beyond ASCII keeps its letters.
        assert_eq!(person("user+x@M\u{fc}nchen.de"), "user@xn--mnchen-3ya.de");
        assert_eq!(person("user@xn--mnchen-3ya.de"), "user@xn--mnchen-3ya.de");
        assert_eq!(person("Jos\u{e9}+1@example.org"), "jos\u{e9}@example.org");
        assert!(reference_person("Jos\u{e9}@example.org", true).1.is_none());
        // Not addresses: the shop's own keys, kept as given (trimmed).
        for key in [
            "Order 55 @ Store 7",
            "@johndoe",
            "ref:abc@123",
            "CUST-001",
            "a@b@c.org",
        ] {
            assert_eq!(person(&format!(" {key} ")), key);
        }
        // A user id in any spelling is one key.
        let id = uuid::Uuid::now_v7();
        for spelling in [
            id.to_string(),
            id.to_string().to_uppercase(),
            id.simple().to_string(),
        ] {
            assert_eq!(person(&spelling), id.to_string());
        }
        // Without folding, a +tag is someone else.
        assert_eq!(
            reference_person("Ann+shop <ann+shop@example.org>", false).0,
            "ann+shop@example.org"
        );
    }

    proptest::proptest! {
        /// However an address is decorated (case, a +tag, a display name, `mailto:`, a trailing
        /// dot, full-width letters), it is the person of the plain address.
        #[test]
        fn decorations_never_make_someone_new(
            local in "[a-z][a-z0-9._]{0,10}[a-z0-9]",
            domain in "[a-z][a-z0-9-]{0,8}[a-z0-9]\\.(org|com|de)",
            tag in proptest::option::of("[a-z0-9]{1,6}"),
            upper in proptest::bool::ANY,
            wrap in 0usize..4,
            wide in proptest::bool::ANY,
            dot in proptest::bool::ANY,
        ) {
            let plain = format!("{local}@{domain}");
            let mut r = match &tag {
                Some(t) => format!("{local}+{t}@{domain}"),
                None => plain.clone(),
            };
            if upper {
                r = r.to_uppercase();
            }
            if dot {
                r.push('.');
            }
            if wide {
                // The first letter full-width (U+FF41 is `a`).
                let first = r.chars().next().unwrap_or('a');
                if first.is_ascii_lowercase() {
                    let w = char::from_u32(0xFF41 + (first as u32 - 'a' as u32)).unwrap_or(first);
                    r = format!("{w}{}", &r[1..]);
                }
            }
            r = match wrap {
                1 => format!("Someone <{r}>"),
                2 => format!("mailto:{r}"),
                3 => format!("  {r}  "),
                _ => r,
            };
            proptest::prop_assert_eq!(reference_person(&r, true).0, plain);
        }
    }
}
