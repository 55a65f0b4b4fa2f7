//! Collected vouchers: what a feed row becomes after normalisation, and the stored record.
//!
//! Adapters (`crate::feeds`) turn each network's format into [`RawOffer`]s, loosely typed as the
//! network sent them; [`RawOffer::normalise`] applies the one set of rules every network shares:
//! trimmed names with one retailer per case-folded name, "no code" spelled many ways, dates with an
//! offset or none (then UTC) or epoch milliseconds, http(s) URLs only. A row breaking a rule is
//! rejected with a reason; the rest of its feed is still ingested.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MAX_EXTERNAL_ID: usize = 256;
pub const MAX_NAME: usize = 200;
pub const MAX_TITLE: usize = 500;
pub const MAX_DESCRIPTION: usize = 4000;
pub const MAX_CODE: usize = 100;
pub const MAX_URL: usize = 2048;

/// A date as a feed wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RawTime {
    #[default]
    None,
    Text(String),
    EpochMillis(i64),
}

/// One feed row, before normalisation. Every field may be missing or malformed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawOffer {
    pub external_id: Option<String>,
    pub retailer: Option<String>,
    pub category: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub code: Option<String>,
    /// The code is a pattern (Impact `MatchMode: RE`), not a literal code.
    pub code_is_pattern: bool,
    pub url: Option<String>,
    pub starts_at: RawTime,
    pub ends_at: RawTime,
}

/// A normalised offer: what one network says about one voucher right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub external_id: String,
    pub retailer: String,
    #[serde(default)]
    pub category: Option<String>,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub code_is_pattern: bool,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    #[serde(with = "crate::domain::times::micros_opt")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[serde(with = "crate::domain::times::micros_opt")]
    pub ends_at: Option<DateTime<Utc>>,
}

/// Where a voucher is in its validity window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Upcoming,
    Active,
    Expired,
}

/// A stored voucher (tree `vouchers`). `v` is the record version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voucher {
    pub v: u32,
    pub id: Uuid,
    pub network: String,
    pub offer: Offer,
    /// When voucherd first saw it; kept across updates (digests select on it).
    #[serde(with = "crate::domain::times::micros")]
    pub first_seen_at: DateTime<Utc>,
    #[serde(with = "crate::domain::times::micros")]
    pub updated_at: DateTime<Utc>,
    /// The phase the catalogue counts it in; moved forward by the sweep as time passes.
    pub phase: Phase,
    /// When the sweep next looks at it (see [`Window::next_change`]).
    #[serde(default)]
    #[serde(with = "crate::domain::times::micros_opt")]
    pub due_at: Option<DateTime<Utc>>,
}

impl Voucher {
    pub const VERSION: u32 = 1;

    pub fn window(&self) -> Window {
        Window::of(&self.offer)
    }
}

/// A validity window, `[starts, ends)`, open where absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl Window {
    pub fn of(offer: &Offer) -> Self {
        Self {
            starts_at: offer.starts_at,
            ends_at: offer.ends_at,
        }
    }

    pub fn phase_at(&self, now: DateTime<Utc>) -> Phase {
        if self.ends_at.is_some_and(|e| e <= now) {
            Phase::Expired
        } else if self.starts_at.is_some_and(|s| s > now) {
            Phase::Upcoming
        } else {
            Phase::Active
        }
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.phase_at(now) == Phase::Active
    }

    /// The next instant after `now` at which the phase changes (the end of an active voucher, the
    /// start of an upcoming one), or, for an expired voucher, when retention ends and it is removed.
    pub fn next_change(
        &self,
        now: DateTime<Utc>,
        retention: chrono::Duration,
    ) -> Option<DateTime<Utc>> {
        match self.phase_at(now) {
            Phase::Upcoming => self.starts_at,
            Phase::Active => self.ends_at,
            Phase::Expired => self.ends_at.map(|e| e + retention),
        }
    }
}

/// The key one name is known by: trimmed, inner whitespace collapsed, case-folded.
pub fn name_key(name: &str) -> String {
    single_line(name).to_lowercase()
}

/// Trims and collapses every whitespace run (newlines included) to one space.
fn single_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `None` for absent, empty and the spellings feeds use for "no value".
fn present(value: Option<&str>) -> Option<&str> {
    let v = value?.trim();
    if v.is_empty()
        || v.eq_ignore_ascii_case("n/a")
        || v.eq_ignore_ascii_case("null")
        || v.eq_ignore_ascii_case("none")
        || v == "-"
    {
        None
    } else {
        Some(v)
    }
}

fn truncate(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

fn no_controls(field: &str, s: &str) -> Result<(), String> {
    if s.chars().any(|c| c.is_control()) {
        return Err(format!("{field} contains control characters"));
    }
    Ok(())
}

impl RawOffer {
    /// Applies the shared rules; `Err` names the broken one.
    pub fn normalise(&self) -> Result<Offer, String> {
        let external_id = present(self.external_id.as_deref())
            .ok_or("external id missing")?
            .to_owned();
        if external_id.chars().count() > MAX_EXTERNAL_ID {
            return Err(format!(
                "external id longer than {MAX_EXTERNAL_ID} characters"
            ));
        }
        no_controls("external id", &external_id)?;

        let retailer = present(self.retailer.as_deref())
            .map(single_line)
            .ok_or("retailer missing")?;
        if retailer.chars().count() > MAX_NAME {
            return Err(format!("retailer longer than {MAX_NAME} characters"));
        }
        let category = present(self.category.as_deref()).map(single_line);
        if category
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_NAME)
        {
            return Err(format!("category longer than {MAX_NAME} characters"));
        }

        let description =
            present(self.description.as_deref()).map(|d| truncate(d.to_owned(), MAX_DESCRIPTION));
        let title = present(self.title.as_deref())
            .map(single_line)
            .or_else(|| description.as_deref().map(single_line))
            .ok_or("title missing")?;
        let title = truncate(title, MAX_TITLE);

        let code = present(self.code.as_deref()).map(str::to_owned);
        if let Some(c) = &code {
            if c.chars().count() > MAX_CODE {
                return Err(format!("code longer than {MAX_CODE} characters"));
            }
            no_controls("code", c)?;
        }

        let url = present(self.url.as_deref()).map(parse_url).transpose()?;
        let starts_at =
            parse_time(&self.starts_at, false).map_err(|e| format!("start date {e}"))?;
        let ends_at = parse_time(&self.ends_at, true).map_err(|e| format!("end date {e}"))?;
        if let (Some(s), Some(e)) = (starts_at, ends_at)
            && e < s
        {
            return Err("end date before start date".into());
        }
        Ok(Offer {
            external_id,
            retailer,
            category,
            title,
            description,
            code_is_pattern: self.code_is_pattern && code.is_some(),
            code,
            url,
            starts_at,
            ends_at,
        })
    }
}

/// An absolute http(s) URL with a host.
pub fn parse_url(raw: &str) -> Result<String, String> {
    if raw.len() > MAX_URL {
        return Err(format!("url longer than {MAX_URL} bytes"));
    }
    let url = url::Url::parse(raw).map_err(|e| format!("url `{raw}` is invalid: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("url `{raw}` is not an http(s) URL"));
    }
    Ok(url.to_string())
}

/// Parses the date spellings feeds use. A time without an offset is UTC; a date without a time is
/// the start of that day, or its last second for an end date.
pub fn parse_time(raw: &RawTime, end_of_day: bool) -> Result<Option<DateTime<Utc>>, String> {
    let parsed = match raw {
        RawTime::None => return Ok(None),
        RawTime::EpochMillis(ms) => DateTime::from_timestamp_millis(*ms),
        RawTime::Text(text) => {
            let Some(s) = present(Some(text)) else {
                return Ok(None);
            };
            parse_text_time(s, end_of_day)
        }
    };
    match parsed {
        Some(t) if (1970..=9999).contains(&chrono::Datelike::year(&t)) => Ok(Some(t)),
        Some(_) => Err("out of range".into()),
        None => Err(match raw {
            RawTime::Text(t) => {
                format!("`{}` is not a date", t.chars().take(40).collect::<String>())
            }
            _ => "is not a date".into(),
        }),
    }
}

/// The text time formats feeds use, compiled once (compiling a format string on every call was
/// the largest cost of parsing a CJ page): with an offset, then without (read as UTC).
static TIME_FORMATS: std::sync::LazyLock<[Vec<Vec<chrono::format::Item<'static>>>; 2]> =
    std::sync::LazyLock::new(|| {
        let compile = |formats: &[&str]| {
            formats
                .iter()
                .filter_map(|f| chrono::format::StrftimeItems::new(f).parse_to_owned().ok())
                .collect::<Vec<_>>()
        };
        [
            compile(&[
                "%Y-%m-%dT%H:%M:%S%.f%z",
                "%Y-%m-%d %H:%M:%S%.f%z",
                "%Y-%m-%d %H:%M:%S%.f%:z",
            ]),
            compile(&[
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d %H:%M",
            ]),
        ]
    });

fn parse_with(s: &str, items: &[chrono::format::Item<'static>]) -> Option<chrono::format::Parsed> {
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(&mut parsed, s, items.iter()).ok()?;
    Some(parsed)
}

fn parse_text_time(s: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let [with_offset, naive] = &*TIME_FORMATS;
    for items in with_offset {
        if let Some(t) = parse_with(s, items).and_then(|p| p.to_datetime().ok()) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for items in naive {
        if let Some(t) = parse_with(s, items).and_then(|p| p.to_naive_datetime_with_offset(0).ok())
        {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let time = if end_of_day {
            NaiveTime::from_hms_opt(23, 59, 59)?
        } else {
            NaiveTime::MIN
        };
        return Some(Utc.from_utc_datetime(&d.and_time(time)));
    }
    if !s.is_empty() && s.len() <= 14 && s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().ok()?;
        // Ten digits or fewer are epoch seconds, more are milliseconds.
        return if s.len() <= 10 {
            DateTime::from_timestamp(n, 0)
        } else {
            DateTime::from_timestamp_millis(n)
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawOffer {
        RawOffer {
            external_id: Some(" 42 ".into()),
            retailer: Some("  Northwind   Outdoor ".into()),
            title: Some("15% off".into()),
            ..RawOffer::default()
        }
    }

    #[test]
    fn names_are_trimmed_and_keys_case_folded() {
        let o = raw().normalise().unwrap();
        assert_eq!(o.external_id, "42");
        assert_eq!(o.retailer, "Northwind Outdoor");
        assert_eq!(name_key(" NORTHWIND  outdoor"), name_key(&o.retailer));
    }

    #[test]
    fn no_code_has_many_spellings() {
        for spelling in ["", "  ", "N/A", "n/a", "null", "NULL", "none"] {
            let mut r = raw();
            r.code = Some(spelling.into());
            r.code_is_pattern = true;
            let o = r.normalise().unwrap();
            assert_eq!(o.code, None, "{spelling:?}");
            assert!(!o.code_is_pattern);
        }
    }

    #[test]
    fn dates_with_offsets_without_and_epoch_millis_become_utc() {
        let cases = [
            ("2026-11-20T00:00:00+01:00", "2026-11-19T23:00:00Z"),
            ("2026-11-02T00:00:00-08:00", "2026-11-02T08:00:00Z"),
            ("2026-11-15 00:00:00.0", "2026-11-15T00:00:00Z"),
            ("2026-11-10", "2026-11-10T00:00:00Z"),
            ("2026-11-10T10:30:00", "2026-11-10T10:30:00Z"),
        ];
        for (text, want) in cases {
            let got = parse_time(&RawTime::Text(text.into()), false)
                .unwrap()
                .unwrap();
            assert_eq!(got, want.parse::<DateTime<Utc>>().unwrap(), "{text}");
        }
        let end = parse_time(&RawTime::Text("2026-12-10".into()), true)
            .unwrap()
            .unwrap();
        assert_eq!(
            end,
            "2026-12-10T23:59:59Z".parse::<DateTime<Utc>>().unwrap()
        );
        let ms = parse_time(&RawTime::EpochMillis(1_794_528_000_000), false)
            .unwrap()
            .unwrap();
        assert_eq!(ms, "2026-11-13T00:00:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(parse_time(&RawTime::Text("".into()), true).unwrap(), None);
        assert!(parse_time(&RawTime::Text("next tuesday".into()), true).is_err());
    }

    #[test]
    fn broken_rows_are_rejected_with_a_reason() {
        let mut r = raw();
        r.external_id = None;
        assert!(r.normalise().unwrap_err().contains("external id"));
        let mut r = raw();
        r.retailer = Some("N/A".into());
        assert!(r.normalise().unwrap_err().contains("retailer"));
        let mut r = raw();
        r.url = Some("javascript:alert(1)".into());
        assert!(r.normalise().unwrap_err().contains("url"));
        let mut r = raw();
        r.starts_at = RawTime::Text("2026-12-01".into());
        r.ends_at = RawTime::Text("2026-11-01".into());
        assert!(r.normalise().unwrap_err().contains("before"));
    }

    #[test]
    fn phases_follow_the_window() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let w = Window {
            starts_at: Some(t("2026-11-10T00:00:00Z")),
            ends_at: Some(t("2026-11-20T00:00:00Z")),
        };
        assert_eq!(w.phase_at(t("2026-11-01T00:00:00Z")), Phase::Upcoming);
        assert_eq!(w.phase_at(t("2026-11-10T00:00:00Z")), Phase::Active);
        assert_eq!(w.phase_at(t("2026-11-20T00:00:00Z")), Phase::Expired);
        let day = chrono::Duration::days(1);
        assert_eq!(w.next_change(t("2026-11-01T00:00:00Z"), day), w.starts_at);
        assert_eq!(w.next_change(t("2026-11-15T00:00:00Z"), day), w.ends_at);
        assert_eq!(
            w.next_change(t("2026-11-25T00:00:00Z"), day),
            Some(t("2026-11-21T00:00:00Z"))
        );
    }
}
