//! Affiliate-network adapters: one module per format, pure functions from the bytes a network
//! answered with to normalised offers and per-row errors. No I/O here: the `NetworkActor` fetches
//! (`crate::actors::network::fetch`) and stores; this module says *what* to ask for
//! ([`request`]) and *what the answer means* ([`parse`]).
//!
//! A row that breaks a rule is rejected with its reason and the rest of the page is kept
//! ([`RowError`]); a page that cannot be read at all, or that reports a fault inside a successful
//! HTTP answer (Rakuten), is a [`FeedError`] and the pull ingests nothing.

pub mod awin;
pub mod cj;
pub mod impact;
pub mod loose;
pub mod mapped;
pub mod rakuten;
pub mod tradedoubler;

use serde::{Deserialize, Serialize};

pub use crate::domain::network::{FeedKind, RowError};
use crate::domain::voucher::{Offer, RawOffer};

/// Column (csv) or field path (json, dots for nesting) of each voucher field, for `csv` and `json`
/// feeds. The defaults read the columns of a plain export: `id, retailer, category, title,
/// description, code, url, starts, ends`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldMap {
    pub external_id: String,
    pub retailer: String,
    pub category: String,
    pub title: String,
    pub description: String,
    pub code: String,
    pub url: String,
    pub starts_at: String,
    pub ends_at: String,
    /// json only: dotted path of the array of rows; empty when the document is the array.
    pub items: String,
}

impl Default for FieldMap {
    fn default() -> Self {
        Self {
            external_id: "id".into(),
            retailer: "retailer".into(),
            category: "category".into(),
            title: "title".into(),
            description: "description".into(),
            code: "code".into(),
            url: "url".into(),
            starts_at: "starts".into(),
            ends_at: "ends".into(),
            items: String::new(),
        }
    }
}

/// Where and how to reach one network (from its `[[networks]]` entry).
#[derive(Debug, Clone)]
pub struct Source {
    pub kind: FeedKind,
    pub url: String,
    pub token: String,
    pub account: String,
    pub map: FieldMap,
}

/// Which page to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRef {
    Number(u32),
    /// A path (or URL) the previous page named, relative to the feed's host.
    Uri(String),
}

/// What the previous pages told the parser of the next one.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageCtx {
    /// 1-based number of this page.
    pub number: u32,
    /// Rows read on earlier pages.
    pub rows_before: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { user: String, password: String },
}

/// An HTTP request to make, described without doing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub auth: Auth,
    pub accept: &'static str,
    pub json_body: Option<serde_json::Value>,
}

/// One page, read.
#[derive(Debug, Default)]
pub struct Page {
    pub offers: Vec<Offer>,
    pub rejected: Vec<RowError>,
    pub next: Option<PageRef>,
}

impl Page {
    pub fn rows(&self) -> usize {
        self.offers.len() + self.rejected.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The answer is not the format the network speaks.
    #[error("malformed feed: {0}")]
    Malformed(String),
    /// The network answered with an error report (e.g. Rakuten's `<fault>` inside an HTTP 200).
    #[error("the network reported a fault: {0}")]
    Fault(String),
}

/// The request for a page of `source`.
pub fn request(source: &Source, page: &PageRef) -> Request {
    let base = source.url.replace("{account}", &source.account);
    let bearer = || {
        if source.token.is_empty() {
            Auth::None
        } else {
            Auth::Bearer(source.token.clone())
        }
    };
    match source.kind {
        FeedKind::Awin => awin::request(&base, bearer(), page),
        FeedKind::Cj => cj::request(&base, &source.account, bearer(), page),
        FeedKind::Rakuten => rakuten::request(&base, bearer(), page),
        FeedKind::Impact => impact::request(&base, &source.account, &source.token, page),
        FeedKind::Tradedoubler => tradedoubler::request(&base, &source.token),
        FeedKind::Csv | FeedKind::Json => Request {
            method: Method::Get,
            url: base,
            auth: bearer(),
            accept: if source.kind == FeedKind::Csv {
                "text/csv"
            } else {
                "application/json"
            },
            json_body: None,
        },
    }
}

/// The day the demo feed's dates are written relative to: served on day D, every date in it moves
/// by D minus this day, so the demo is as fresh whenever it is served as on the day it was written.
pub const DEMO_DATED: (i32, u32, u32) = (2026, 11, 20);

/// Whether `name` is a feed compiled into the binary.
pub fn is_builtin(name: &str) -> bool {
    name == "demo"
}

/// Feeds compiled into the binary, reachable as `builtin:NAME`: the default configuration's demo
/// network, so an installed binary serves vouchers from any directory with no file of its own.
/// Its dates are relative to `today` (see [`DEMO_DATED`]).
pub fn builtin(name: &str, today: chrono::NaiveDate) -> Option<Vec<u8>> {
    match name {
        "demo" => {
            let text = include_str!("../../examples/feeds/demo.csv");
            let (y, m, d) = DEMO_DATED;
            let dated = chrono::NaiveDate::from_ymd_opt(y, m, d)?;
            Some(shift_dates(text, (today - dated).num_days()).into_bytes())
        }
        _ => None,
    }
}

/// `text` with every date written `YYYY-MM-DD` moved by `days` (times, offsets and everything
/// else untouched; digits that are not a valid date stay as they are).
pub fn shift_dates(text: &str, days: i64) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + 10 <= bytes.len() {
        let starts_number = i == 0 || !bytes[i - 1].is_ascii_digit();
        let ends_number = bytes.get(i + 10).is_none_or(|b| !b.is_ascii_digit());
        if starts_number
            && ends_number
            && let Some(candidate) = text.get(i..i + 10)
            && is_date_shape(candidate.as_bytes())
            && let Ok(date) = chrono::NaiveDate::parse_from_str(candidate, "%Y-%m-%d")
            && let Some(moved) = date.checked_add_signed(chrono::Duration::days(days))
        {
            out.push_str(&text[copied..i]);
            out.push_str(&moved.format("%Y-%m-%d").to_string());
            i += 10;
            copied = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_date_shape(b: &[u8]) -> bool {
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// The document as UTF-8 without a byte-order mark: an XML document in another encoding its
/// prolog declares (ISO-8859-1, windows-1252, …) is decoded; anything else is left for the adapter
/// to accept or refuse. (An HTTP `Content-Type` charset is decoded by the fetcher.)
pub fn normalise_text(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if std::str::from_utf8(bytes).is_ok() {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let declared = xml_declared_encoding(bytes)
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .filter(|e| *e != encoding_rs::UTF_8);
    match declared {
        Some(encoding) => {
            let (text, _, _) = encoding.decode(bytes);
            std::borrow::Cow::Owned(text.into_owned().into_bytes())
        }
        None => std::borrow::Cow::Borrowed(bytes),
    }
}

/// The `encoding` of an XML prolog (`<?xml version="1.0" encoding="ISO-8859-1"?>`), if any.
fn xml_declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..bytes.len().min(200))?;
    let head = String::from_utf8_lossy(head);
    let prolog = head.trim_start().strip_prefix("<?xml")?;
    let prolog = &prolog[..prolog.find("?>")?];
    let at = prolog.find("encoding")?;
    let rest = prolog[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].to_owned())
}

pub fn parse(source: &Source, ctx: PageCtx, bytes: &[u8]) -> Result<Page, FeedError> {
    let text = normalise_text(bytes);
    let bytes = text.as_ref();
    let (raws, next) = match source.kind {
        FeedKind::Awin => awin::parse(bytes, ctx)?,
        FeedKind::Cj => cj::parse(bytes, ctx)?,
        FeedKind::Rakuten => rakuten::parse(bytes, ctx)?,
        FeedKind::Impact => impact::parse(bytes)?,
        FeedKind::Tradedoubler => (tradedoubler::parse(bytes)?, None),
        FeedKind::Csv => (mapped::parse_csv(bytes, &source.map)?, None),
        FeedKind::Json => (mapped::parse_json(bytes, &source.map)?, None),
    };
    Ok(finish(raws, ctx.number, next))
}

/// A row as an adapter read it: the raw offer, or why it could not even be read.
pub type RawRow = Result<RawOffer, (Option<String>, String)>;

/// Normalises every row, splitting the good from the rejected.
fn finish(rows: Vec<RawRow>, page: u32, next: Option<PageRef>) -> Page {
    let mut out = Page {
        offers: Vec::with_capacity(rows.len()),
        rejected: Vec::new(),
        next,
    };
    for (i, row) in rows.into_iter().enumerate() {
        let reject = |external_id: Option<String>, reason: String| RowError {
            row: i + 1,
            page,
            external_id,
            reason,
        };
        match row {
            Ok(raw) => match raw.normalise() {
                Ok(offer) => out.offers.push(offer),
                Err(reason) => out.rejected.push(reject(
                    raw.external_id.map(|s| s.chars().take(64).collect()),
                    reason,
                )),
            },
            Err((id, reason)) => out.rejected.push(reject(id, reason)),
        }
    }
    out
}

/// Appends query parameters to a URL given as text (keeps what it already has).
pub(crate) fn with_query(url: &str, params: &[(&str, String)]) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.scheme() != "file" => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Text of the bytes (already through [`normalise_text`]), or a malformed-feed error.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, FeedError> {
    std::str::from_utf8(bytes).map_err(|e| FeedError::Malformed(format!("not UTF-8: {e}")))
}

#[cfg(test)]
mod tests;
