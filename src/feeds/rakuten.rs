//! Rakuten Advertising coupon feed (`/coupon/1.0`): Bearer token, paged with `pagenumber` up to
//! `<TotalPages>`. Errors come back *inside an HTTP 200* as `<fault><errorstring>…`: that is a
//! fault, never an empty feed. The feed has no offer id: the identity is the advertiser id and
//! the `offerid` of the click URL, or, lacking one, a digest of the advertiser, text and code.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Auth, FeedError, Method, PageCtx, PageRef, RawRow, Request};
use crate::domain::voucher::{RawOffer, RawTime};

pub const PAGE_SIZE: u32 = 500;

pub fn request(url: &str, auth: Auth, page: &PageRef) -> Request {
    let number = match page {
        PageRef::Number(n) => *n,
        PageRef::Uri(_) => 1,
    };
    Request {
        method: Method::Get,
        url: super::with_query(
            url,
            &[
                ("pagenumber", number.to_string()),
                ("resultsperpage", PAGE_SIZE.to_string()),
            ],
        ),
        auth,
        accept: "application/xml",
        json_body: None,
    }
}

#[derive(Deserialize)]
struct Fault {
    #[serde(default)]
    errorcode: Option<String>,
    #[serde(default)]
    errorstring: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Feed {
    #[serde(default)]
    total_pages: Option<String>,
    #[serde(default)]
    page_number_requested: Option<String>,
    #[serde(default, rename = "link")]
    links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    categories: Option<Categories>,
    #[serde(default)]
    offerdescription: Option<String>,
    #[serde(default)]
    offerstartdate: Option<String>,
    #[serde(default)]
    offerenddate: Option<String>,
    #[serde(default)]
    couponcode: Option<String>,
    #[serde(default)]
    couponrestriction: Option<String>,
    #[serde(default)]
    clickurl: Option<String>,
    #[serde(default)]
    advertiserid: Option<String>,
    #[serde(default)]
    advertisername: Option<String>,
}

#[derive(Deserialize)]
struct Categories {
    #[serde(default)]
    category: Vec<Category>,
}

#[derive(Deserialize)]
struct Category {
    #[serde(default, rename = "$text")]
    name: Option<String>,
}

/// The name of the document's root element.
fn root(text: &str) -> Result<String, FeedError> {
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                return Ok(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
            }
            Ok(quick_xml::events::Event::Eof) => {
                return Err(FeedError::Malformed("empty XML document".into()));
            }
            Ok(_) => {}
            Err(e) => return Err(FeedError::Malformed(format!("not XML: {e}"))),
        }
    }
}

fn offer_id(link: &Link) -> Option<String> {
    let advertiser = link.advertiserid.as_deref()?.trim();
    if advertiser.is_empty() {
        return None;
    }
    let from_url = link
        .clickurl
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k.eq_ignore_ascii_case("offerid"))
                .map(|(_, v)| v.into_owned())
        })
        .filter(|v| !v.is_empty());
    Some(match from_url {
        Some(offer) => format!("{advertiser}-{offer}"),
        None => {
            let mut h = Sha256::new();
            for part in [
                &link.offerdescription,
                &link.couponcode,
                &link.offerstartdate,
            ] {
                h.update(part.as_deref().unwrap_or_default().trim().as_bytes());
                h.update([0xff]);
            }
            format!("{advertiser}-{}", &hex::encode(h.finalize())[..16])
        }
    })
}

pub fn parse(bytes: &[u8], ctx: PageCtx) -> Result<(Vec<RawRow>, Option<PageRef>), FeedError> {
    let text = super::utf8(bytes)?;
    match root(text)?.as_str() {
        "fault" => {
            let fault: Fault = quick_xml::de::from_str(text)
                .map_err(|e| FeedError::Malformed(format!("unreadable fault: {e}")))?;
            let message = fault.errorstring.unwrap_or_else(|| "unknown fault".into());
            return Err(FeedError::Fault(match fault.errorcode {
                Some(code) => format!("{} (error {})", message.trim(), code.trim()),
                None => message.trim().to_owned(),
            }));
        }
        "couponfeed" => {}
        other => {
            return Err(FeedError::Malformed(format!(
                "expected <couponfeed>, found <{other}>"
            )));
        }
    }
    let feed: Feed = quick_xml::de::from_str(text)
        .map_err(|e| FeedError::Malformed(format!("not a Rakuten coupon feed: {e}")))?;
    let page = feed
        .page_number_requested
        .as_deref()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .unwrap_or(ctx.number);
    let total = feed
        .total_pages
        .as_deref()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .unwrap_or(1);
    let next = (!feed.links.is_empty() && page < total)
        .then(|| page.checked_add(1).map(PageRef::Number))
        .flatten();
    let rows = feed
        .links
        .into_iter()
        .map(|l| {
            let external_id = offer_id(&l);
            Ok(RawOffer {
                external_id,
                retailer: l.advertisername,
                category: l
                    .categories
                    .and_then(|c| c.category.into_iter().find_map(|c| c.name)),
                title: l.offerdescription,
                description: l.couponrestriction,
                code: l.couponcode,
                code_is_pattern: false,
                url: l.clickurl,
                starts_at: l.offerstartdate.map_or(RawTime::None, RawTime::Text),
                ends_at: l.offerenddate.map_or(RawTime::None, RawTime::Text),
            })
        })
        .collect();
    Ok((rows, next))
}
