//! Impact PromoCodes (`/Mediapartners/{AccountSID}/PromoCodes`): HTTP Basic `account:token`,
//! `Accept: application/json`; numbers arrive as strings; pages follow `@nextpageuri`, a path
//! relative to the API host (empty on the last page); `MatchMode: RE` marks a code that is a
//! regular expression rather than a literal code: kept, flagged as a pattern.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::loose::{Loose, LooseTime, Named, rows};
use super::{Auth, FeedError, Method, PageRef, RawRow, Request};
use crate::domain::voucher::RawOffer;

pub fn request(base: &str, account: &str, token: &str, page: &PageRef) -> Request {
    let url = match page {
        PageRef::Number(_) => base.to_owned(),
        PageRef::Uri(next) => resolve(base, next),
    };
    Request {
        method: Method::Get,
        url,
        auth: Auth::Basic {
            user: account.to_owned(),
            password: token.to_owned(),
        },
        accept: "application/json",
        json_body: None,
    }
}

/// `next` relative to `base` (an absolute URL is taken as it is: the pull refuses one on another
/// host or in clear).
fn resolve(base: &str, next: &str) -> String {
    match url::Url::parse(base).and_then(|b| b.join(next)) {
        Ok(u) => u.to_string(),
        Err(_) => base.to_owned(),
    }
}

#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(default, rename = "@nextpageuri")]
    next: Loose,
    #[serde(borrow, rename = "PromoCodes")]
    codes: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    #[serde(default)]
    id: Loose,
    #[serde(default)]
    code: Loose,
    #[serde(default)]
    state: Loose,
    #[serde(default)]
    program: Named,
    #[serde(default)]
    advertiser: Named,
    #[serde(default)]
    deal: Named,
    #[serde(default)]
    match_mode: Loose,
    #[serde(default)]
    start_date: LooseTime,
    #[serde(default)]
    end_date: LooseTime,
    #[serde(default)]
    tracking_link: Loose,
}

pub fn parse(bytes: &[u8]) -> Result<(Vec<RawRow>, Option<PageRef>), FeedError> {
    let doc: Doc = serde_json::from_slice(bytes)
        .map_err(|e| FeedError::Malformed(format!("not an Impact PromoCodes page: {e}")))?;
    let out = rows::<Row>(&doc.codes)
        .into_iter()
        .map(|row| {
            let row = row.map_err(|e| (None, e))?;
            let id = row.id.into_inner();
            if let Some(state) = row.state.as_deref()
                && !state.eq_ignore_ascii_case("active")
            {
                return Err((id, format!("state is {state}, not ACTIVE")));
            }
            Ok(RawOffer {
                external_id: id,
                retailer: row.program.0.or(row.advertiser.0),
                category: None,
                title: row.deal.0,
                description: None,
                code: row.code.into_inner(),
                code_is_pattern: row
                    .match_mode
                    .as_deref()
                    .is_some_and(|m| m.eq_ignore_ascii_case("re")),
                url: row.tracking_link.into_inner(),
                starts_at: row.start_date.0,
                ends_at: row.end_date.0,
            })
        })
        .collect();
    let next = doc
        .next
        .into_inner()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(PageRef::Uri);
    Ok((out, next))
}
