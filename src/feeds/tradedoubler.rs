//! Tradedoubler vouchers: `GET {url}?token=…` (the token travels in the query), a JSON array;
//! dates are epoch milliseconds.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::loose::{Loose, LooseTime, rows};
use super::{Auth, FeedError, Method, RawRow, Request};
use crate::domain::voucher::RawOffer;

pub fn request(url: &str, token: &str) -> Request {
    let url = if token.is_empty() {
        url.to_owned()
    } else {
        super::with_query(url, &[("token", token.to_owned())])
    };
    Request {
        method: Method::Get,
        url,
        auth: Auth::None,
        accept: "application/json",
        json_body: None,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    #[serde(default)]
    id: Loose,
    #[serde(default)]
    program_name: Loose,
    #[serde(default)]
    code: Loose,
    #[serde(default)]
    start_date: LooseTime,
    #[serde(default)]
    end_date: LooseTime,
    #[serde(default)]
    title: Loose,
    #[serde(default)]
    description: Loose,
    #[serde(default)]
    short_description: Loose,
    #[serde(default)]
    default_track_uri: Loose,
    #[serde(default)]
    landing_url: Loose,
}

pub fn parse(bytes: &[u8]) -> Result<Vec<RawRow>, FeedError> {
    let items: Vec<&RawValue> = serde_json::from_slice(bytes)
        .map_err(|e| FeedError::Malformed(format!("not a Tradedoubler voucher list: {e}")))?;
    Ok(rows::<Row>(&items)
        .into_iter()
        .map(|row| {
            let row = row.map_err(|e| (None, e))?;
            Ok(RawOffer {
                external_id: row.id.into_inner(),
                retailer: row.program_name.into_inner(),
                category: None,
                title: row.title.into_inner().or(row.short_description.0.clone()),
                description: row.description.into_inner().or(row.short_description.0),
                code: row.code.into_inner(),
                code_is_pattern: false,
                url: row
                    .default_track_uri
                    .into_inner()
                    .or(row.landing_url.into_inner()),
                starts_at: row.start_date.0,
                ends_at: row.end_date.0,
            })
        })
        .collect())
}
