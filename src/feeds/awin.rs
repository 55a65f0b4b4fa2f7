//! Awin promotions (publisher API): `POST {url}` with a filter body and a Bearer token, JSON
//! `{"data": [...], "pagination": {page, pageSize, total}}`. Dates carry offsets; `voucher` is
//! null for promotions without a code; the tracking URL is the link a publisher earns from.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::loose::{Loose, LooseTime, Named, rows};
use super::{Auth, FeedError, Method, PageCtx, PageRef, RawRow, Request};
use crate::domain::voucher::RawOffer;

pub const PAGE_SIZE: u32 = 200;

pub fn request(url: &str, auth: Auth, page: &PageRef) -> Request {
    let number = match page {
        PageRef::Number(n) => *n,
        PageRef::Uri(_) => 1,
    };
    Request {
        method: Method::Post,
        url: url.to_owned(),
        auth,
        accept: "application/json",
        json_body: Some(serde_json::json!({
            "filters": { "membership": "joined", "status": "active" },
            "pagination": { "page": number, "pageSize": PAGE_SIZE },
        })),
    }
}

#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(borrow)]
    data: Vec<&'a RawValue>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    #[serde(default)]
    page: Option<u32>,
    #[serde(default, rename = "pageSize")]
    page_size: Option<u32>,
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    #[serde(default)]
    promotion_id: Loose,
    #[serde(default)]
    advertiser: Named,
    #[serde(default)]
    title: Loose,
    #[serde(default)]
    description: Loose,
    #[serde(default)]
    start_date: LooseTime,
    #[serde(default)]
    end_date: LooseTime,
    #[serde(default)]
    url: Loose,
    #[serde(default)]
    url_tracking: Loose,
    #[serde(default)]
    voucher: Option<Voucher>,
}

#[derive(Deserialize)]
struct Voucher {
    #[serde(default)]
    code: Loose,
}

pub fn parse(bytes: &[u8], ctx: PageCtx) -> Result<(Vec<RawRow>, Option<PageRef>), FeedError> {
    let doc: Doc = serde_json::from_slice(bytes)
        .map_err(|e| FeedError::Malformed(format!("not an Awin promotions page: {e}")))?;
    let returned = doc.data.len() as u64;
    let out = rows::<Row>(&doc.data)
        .into_iter()
        .map(|row| {
            let row = row.map_err(|e| (None, e))?;
            Ok(RawOffer {
                external_id: row.promotion_id.into_inner(),
                retailer: row.advertiser.0,
                category: None,
                title: row.title.into_inner(),
                description: row.description.into_inner(),
                code: row.voucher.and_then(|v| v.code.into_inner()),
                code_is_pattern: false,
                url: row.url_tracking.into_inner().or(row.url.into_inner()),
                starts_at: row.start_date.0,
                ends_at: row.end_date.0,
            })
        })
        .collect();
    let next = doc.pagination.and_then(|p| {
        let page = p.page.unwrap_or(ctx.number);
        let size = u64::from(p.page_size.unwrap_or(PAGE_SIZE));
        let total = p.total?;
        let more = returned > 0 && u64::from(page).saturating_mul(size) < total;
        more.then(|| page.checked_add(1).map(PageRef::Number))
            .flatten()
    });
    Ok((out, next))
}
