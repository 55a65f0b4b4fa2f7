//! CJ link search (`link-search.api.cj.com/v2/link-search`): Bearer token, `website-id` from
//! `account`, paged with `page-number`; XML `<cj-api><links total-matched records-returned
//! page-number><link>…`. `N/A` or an empty element means "no value"; dates have no offset
//! (`2026-11-15 00:00:00.0`) and are read as UTC.

use serde::Deserialize;

use super::{Auth, FeedError, Method, PageCtx, PageRef, RawRow, Request};
use crate::domain::voucher::{RawOffer, RawTime};

pub const PAGE_SIZE: u32 = 100;

pub fn request(url: &str, account: &str, auth: Auth, page: &PageRef) -> Request {
    let number = match page {
        PageRef::Number(n) => *n,
        PageRef::Uri(_) => 1,
    };
    let mut params = vec![
        ("page-number", number.to_string()),
        ("records-per-page", PAGE_SIZE.to_string()),
    ];
    if !account.is_empty() && !url.contains("website-id=") {
        params.push(("website-id", account.to_owned()));
    }
    Request {
        method: Method::Get,
        url: super::with_query(url, &params),
        auth,
        accept: "application/xml",
        json_body: None,
    }
}

#[derive(Deserialize)]
struct Api {
    #[serde(default)]
    links: Option<Links>,
    #[serde(default, rename = "error-message")]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Links {
    #[serde(default, rename = "@total-matched")]
    total_matched: Option<String>,
    #[serde(default, rename = "@records-returned")]
    records_returned: Option<String>,
    #[serde(default, rename = "@page-number")]
    page_number: Option<String>,
    #[serde(default, rename = "link")]
    links: Vec<Link>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Link {
    #[serde(default)]
    advertiser_name: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    coupon_code: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    link_id: Option<String>,
    #[serde(default)]
    link_name: Option<String>,
    #[serde(default)]
    promotion_start_date: Option<String>,
    #[serde(default)]
    promotion_end_date: Option<String>,
    #[serde(default, rename = "clickUrl")]
    click_url: Option<String>,
    #[serde(default)]
    destination: Option<String>,
}

fn number(s: &Option<String>) -> Option<u64> {
    s.as_deref()?.trim().parse().ok()
}

fn time(s: Option<String>) -> RawTime {
    s.map_or(RawTime::None, RawTime::Text)
}

pub fn parse(bytes: &[u8], ctx: PageCtx) -> Result<(Vec<RawRow>, Option<PageRef>), FeedError> {
    let text = super::utf8(bytes)?;
    let api: Api = quick_xml::de::from_str(text)
        .map_err(|e| FeedError::Malformed(format!("not a CJ link-search answer: {e}")))?;
    if let Some(error) = api.error {
        return Err(FeedError::Fault(error.trim().to_owned()));
    }
    let links = api
        .links
        .ok_or_else(|| FeedError::Malformed("no <links> element".into()))?;
    let returned = number(&links.records_returned).unwrap_or(links.links.len() as u64);
    let page = number(&links.page_number).map_or(ctx.number, |p| p as u32);
    let next = match number(&links.total_matched) {
        Some(total) if returned > 0 && ctx.rows_before + returned < total => {
            Some(PageRef::Number(page.saturating_add(1)))
        }
        _ => None,
    };
    let rows = links
        .links
        .into_iter()
        .map(|l| {
            Ok(RawOffer {
                external_id: l.link_id,
                retailer: l.advertiser_name,
                category: l.category,
                title: l.link_name,
                description: l.description,
                code: l.coupon_code,
                code_is_pattern: false,
                url: l.click_url.or(l.destination),
                starts_at: time(l.promotion_start_date),
                ends_at: time(l.promotion_end_date),
            })
        })
        .collect();
    Ok((rows, next))
}
