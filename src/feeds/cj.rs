//! CJ link search (`link-search.api.cj.com/v2/link-search`): Bearer token, `website-id` from
//! `account`, paged with `page-number`; XML `<cj-api><links total-matched records-returned
//! page-number><link>…`. `N/A` or an empty element means "no value"; dates have no offset
//! (`2026-11-15 00:00:00.0`) and are read as UTC.

use quick_xml::events::{BytesStart, Event};

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

/// The fields of one `<link>` voucherd reads (elements it does not know are skipped).
#[derive(Default)]
struct Link {
    advertiser_name: Option<String>,
    category: Option<String>,
    coupon_code: Option<String>,
    description: Option<String>,
    link_id: Option<String>,
    link_name: Option<String>,
    promotion_start_date: Option<String>,
    promotion_end_date: Option<String>,
    click_url: Option<String>,
    destination: Option<String>,
}

impl Link {
    fn field(&mut self, element: &[u8]) -> Option<&mut Option<String>> {
        Some(match element {
            b"advertiser-name" => &mut self.advertiser_name,
            b"category" => &mut self.category,
            b"coupon-code" => &mut self.coupon_code,
            b"description" => &mut self.description,
            b"link-id" => &mut self.link_id,
            b"link-name" => &mut self.link_name,
            b"promotion-start-date" => &mut self.promotion_start_date,
            b"promotion-end-date" => &mut self.promotion_end_date,
            b"clickUrl" => &mut self.click_url,
            b"destination" => &mut self.destination,
            _ => return None,
        })
    }

    fn into_row(self) -> RawRow {
        Ok(RawOffer {
            external_id: self.link_id,
            retailer: self.advertiser_name,
            category: self.category,
            title: self.link_name,
            description: self.description,
            code: self.coupon_code,
            code_is_pattern: false,
            url: self.click_url.or(self.destination),
            starts_at: time(self.promotion_start_date),
            ends_at: time(self.promotion_end_date),
        })
    }
}

/// The `<links>` element's paging attributes.
#[derive(Default)]
struct Paging {
    total_matched: Option<String>,
    records_returned: Option<String>,
    page_number: Option<String>,
}

fn paging(e: &BytesStart) -> Result<Paging, FeedError> {
    let mut p = Paging::default();
    for a in e.attributes() {
        let a = a.map_err(malformed)?;
        let value = Some(a.unescape_value().map_err(malformed)?.into_owned());
        match a.key.local_name().as_ref() {
            b"total-matched" => p.total_matched = value,
            b"records-returned" => p.records_returned = value,
            b"page-number" => p.page_number = value,
            _ => {}
        }
    }
    Ok(p)
}

fn malformed(e: impl std::fmt::Display) -> FeedError {
    FeedError::Malformed(format!("not a CJ link-search answer: {e}"))
}

fn number(s: &Option<String>) -> Option<u64> {
    s.as_deref()?.trim().parse().ok()
}

fn time(s: Option<String>) -> RawTime {
    s.map_or(RawTime::None, RawTime::Text)
}

/// Reads the answer with quick-xml's event reader, one pass, copying only the fields it keeps
/// (the serde deserializer was most of the cost of a CJ pull).
pub fn parse(bytes: &[u8], ctx: PageCtx) -> Result<(Vec<RawRow>, Option<PageRef>), FeedError> {
    let text = super::utf8(bytes)?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut root_seen = false;
    let mut links: Option<Paging> = None;
    let mut error: Option<String> = None;
    let mut rows = Vec::new();
    let mut link: Option<Link> = None;
    // The element whose text is being read (inside a link, or the error message), and its text.
    let mut reading: Option<Vec<u8>> = None;
    let mut value = String::new();
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(e) => {
                depth += 1;
                let name = e.local_name();
                let name = name.as_ref();
                if !root_seen {
                    root_seen = true;
                    if name != b"cj-api" {
                        return Err(malformed("the root element is not <cj-api>"));
                    }
                } else if link.is_none() && name == b"links" && links.is_none() {
                    links = Some(paging(&e)?);
                } else if link.is_none() && name == b"link" && links.is_some() {
                    link = Some(Link::default());
                } else if (link.is_some() || name == b"error-message") && reading.is_none() {
                    reading = Some(name.to_vec());
                    value.clear();
                }
            }
            Event::Empty(e) => {
                let name = e.local_name();
                if !root_seen {
                    return Err(malformed("the root element is not <cj-api>"));
                }
                if link.is_none() && name.as_ref() == b"links" && links.is_none() {
                    links = Some(paging(&e)?);
                }
            }
            Event::Text(t) if reading.is_some() => {
                value.push_str(&t.xml_content().map_err(malformed)?);
            }
            Event::CData(t) if reading.is_some() => {
                value.push_str(&t.decode().map_err(malformed)?);
            }
            Event::GeneralRef(r) if reading.is_some() => {
                if let Some(c) = r.resolve_char_ref().map_err(malformed)? {
                    value.push(c);
                } else {
                    let name = r.decode().map_err(malformed)?;
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| malformed(format!("unknown entity &{name};")))?;
                    value.push_str(resolved);
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = e.local_name();
                let name = name.as_ref();
                if reading.as_deref() == Some(name) {
                    reading = None;
                    let text = std::mem::take(&mut value);
                    match &mut link {
                        Some(l) => {
                            if let Some(slot) = l.field(name) {
                                *slot = Some(text);
                            }
                        }
                        None => error = Some(text),
                    }
                } else if name == b"link"
                    && reading.is_none()
                    && let Some(l) = link.take()
                {
                    rows.push(l.into_row());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(malformed("the document ends inside an element"));
    }
    if !root_seen {
        return Err(malformed("no XML document"));
    }
    if let Some(error) = error {
        return Err(FeedError::Fault(error.trim().to_owned()));
    }
    let links = links.ok_or_else(|| FeedError::Malformed("no <links> element".into()))?;
    let returned = number(&links.records_returned).unwrap_or(rows.len() as u64);
    let page = number(&links.page_number).map_or(ctx.number, |p| p as u32);
    let next = match number(&links.total_matched) {
        Some(total) if returned > 0 && ctx.rows_before.saturating_add(returned) < total => {
            page.checked_add(1).map(PageRef::Number)
        }
        _ => None,
    };
    Ok((rows, next))
}
