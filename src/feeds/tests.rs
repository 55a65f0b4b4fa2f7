//! Every adapter against its network's sample (tests/fixtures/feeds, copied from the shared
//! samples), and the property that no adapter panics on arbitrary bytes.

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use super::*;

fn source(kind: FeedKind) -> Source {
    Source {
        kind,
        url: "https://api.example/feed".into(),
        token: "tok".into(),
        account: "acct".into(),
        map: FieldMap::default(),
    }
}

fn first() -> PageCtx {
    PageCtx {
        number: 1,
        rows_before: 0,
    }
}

fn t(s: &str) -> Option<DateTime<Utc>> {
    Some(s.parse().unwrap())
}

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/feeds/", $name))
    };
}

#[test]
fn awin_sample() {
    let page = parse(
        &source(FeedKind::Awin),
        first(),
        fixture!("awin-promotions.json"),
    )
    .unwrap();
    assert!(page.rejected.is_empty(), "{:?}", page.rejected);
    assert_eq!(page.offers.len(), 2);
    let tent = &page.offers[0];
    assert_eq!(tent.external_id, "812345");
    assert_eq!(tent.retailer, "Northwind Outdoor");
    assert_eq!(tent.code.as_deref(), Some("TENT15"));
    assert!(
        tent.url
            .as_deref()
            .unwrap()
            .starts_with("https://www.awin1.com/")
    );
    let free = &page.offers[1];
    assert_eq!(free.code, None, "voucher: null means no code");
    assert_eq!(free.starts_at, t("2026-11-19T23:00:00Z"), "offset applied");
    assert_eq!(page.next, None, "page 1 of 2 rows with total 2");
}

#[test]
fn awin_pages_until_total() {
    let body = br#"{"data":[{"promotionId":1,"advertiser":{"name":"A"},"title":"x"}],
                    "pagination":{"page":1,"pageSize":1,"total":3}}"#;
    let page = parse(&source(FeedKind::Awin), first(), body).unwrap();
    assert_eq!(page.next, Some(PageRef::Number(2)));
    let req = request(&source(FeedKind::Awin), &PageRef::Number(2));
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.auth, Auth::Bearer("tok".into()));
    assert_eq!(req.json_body.unwrap()["pagination"]["page"], 2);
}

#[test]
fn cj_sample_with_na_code_and_empty_end() {
    let page = parse(
        &source(FeedKind::Cj),
        first(),
        fixture!("cj-link-search.xml"),
    )
    .unwrap();
    assert!(page.rejected.is_empty(), "{:?}", page.rejected);
    assert_eq!(page.offers.len(), 2);
    let shoes = &page.offers[0];
    assert_eq!(shoes.external_id, "13579246");
    assert_eq!(shoes.category.as_deref(), Some("Apparel & Accessories"));
    assert_eq!(shoes.code.as_deref(), Some("STEP20"));
    assert_eq!(shoes.starts_at, t("2026-11-15T00:00:00Z"));
    let travel = &page.offers[1];
    assert_eq!(travel.code, None, "N/A is no code");
    assert_eq!(travel.ends_at, None, "empty end date is none");
    assert_eq!(page.next, None);
    let req = request(&source(FeedKind::Cj), &PageRef::Number(3));
    assert!(req.url.contains("page-number=3"), "{}", req.url);
    assert!(req.url.contains("website-id=acct"), "{}", req.url);
}

#[test]
fn rakuten_sample_and_fault() {
    let page = parse(
        &source(FeedKind::Rakuten),
        first(),
        fixture!("rakuten-coupons.xml"),
    )
    .unwrap();
    assert!(page.rejected.is_empty(), "{:?}", page.rejected);
    assert_eq!(page.offers.len(), 2);
    assert_eq!(page.offers[0].external_id, "38765-111.1");
    assert_eq!(page.offers[0].category.as_deref(), Some("Home & Garden"));
    assert_eq!(page.offers[0].ends_at, t("2026-12-10T23:59:59Z"));
    assert_eq!(page.offers[1].code, None);
    let fault = parse(
        &source(FeedKind::Rakuten),
        first(),
        fixture!("rakuten-fault.xml"),
    );
    match fault {
        Err(FeedError::Fault(m)) => assert!(m.contains("Invalid or unapproved token"), "{m}"),
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn impact_sample_pages_relative_and_flags_patterns() {
    let p1 = parse(
        &source(FeedKind::Impact),
        first(),
        fixture!("impact-promocodes-page1.json"),
    )
    .unwrap();
    assert_eq!(p1.offers[0].external_id, "90001");
    assert_eq!(p1.offers[0].retailer, "Woodgrove Fitness");
    assert_eq!(p1.offers[0].starts_at, t("2026-11-02T08:00:00Z"));
    let next = p1.next.clone().unwrap();
    let src = Source {
        url: "https://api.impact.example/Mediapartners/IRabc123/PromoCodes".into(),
        ..source(FeedKind::Impact)
    };
    let req = request(&src, &next);
    assert_eq!(
        req.url,
        "https://api.impact.example/Mediapartners/IRabc123/PromoCodes?PageSize=1&Page=2"
    );
    assert_eq!(
        req.auth,
        Auth::Basic {
            user: "acct".into(),
            password: "tok".into()
        }
    );
    assert_eq!(req.accept, "application/json");
    let p2 = parse(&src, first(), fixture!("impact-promocodes-page2.json")).unwrap();
    assert_eq!(p2.next, None, "empty @nextpageuri ends paging");
    assert!(p2.offers[0].code_is_pattern);
    assert_eq!(p2.offers[0].code.as_deref(), Some("GYM-[A-Z]{4}"));
    assert!(!p1.offers[0].code_is_pattern);
}

#[test]
fn tradedoubler_sample_with_epoch_millis() {
    let page = parse(
        &source(FeedKind::Tradedoubler),
        first(),
        fixture!("tradedoubler-vouchers.json"),
    )
    .unwrap();
    assert_eq!(page.offers.len(), 1);
    let o = &page.offers[0];
    assert_eq!(o.retailer, "Proseware Cosmetics");
    assert_eq!(o.starts_at, t("2026-11-13T00:00:00Z"));
    assert_eq!(o.ends_at, t("2026-12-31T23:59:59Z"));
    let req = request(&source(FeedKind::Tradedoubler), &PageRef::Number(1));
    assert!(req.url.ends_with("?token=tok"), "{}", req.url);
    assert_eq!(req.auth, Auth::None);
}

#[test]
fn csv_sample_with_default_mapping() {
    let page = parse(&source(FeedKind::Csv), first(), fixture!("generic.csv")).unwrap();
    assert!(page.rejected.is_empty(), "{:?}", page.rejected);
    assert_eq!(page.offers.len(), 2);
    assert_eq!(page.offers[0].title, "Rugs: buy one, get one half price");
    assert_eq!(page.offers[1].code, None);
    assert_eq!(page.offers[1].ends_at, None);
}

#[test]
fn json_with_a_custom_mapping_and_a_bad_row() {
    let map = FieldMap {
        external_id: "ref".into(),
        retailer: "shop.name".into(),
        title: "headline".into(),
        items: "result.offers".into(),
        ..FieldMap::default()
    };
    let src = Source {
        map,
        ..source(FeedKind::Json)
    };
    let body = br#"{"result":{"offers":[
        {"ref": 7, "shop": {"name": "Alpine Ski"}, "headline": "Ski pass -10%", "code": "SKI10", "ends": "2027-01-01"},
        {"ref": 8, "headline": "no shop"},
        "not an object"
    ]}}"#;
    let page = parse(&src, first(), body).unwrap();
    assert_eq!(page.offers.len(), 1);
    assert_eq!(page.offers[0].external_id, "7");
    assert_eq!(page.rejected.len(), 2);
    assert_eq!(page.rejected[0].row, 2);
    assert!(page.rejected[0].reason.contains("retailer"));
}

#[test]
fn a_bad_row_is_rejected_and_the_rest_kept() {
    let body = br#"[
        {"id": 1, "programName": "Shop", "title": "ok", "startDate": 1794528000000},
        {"id": 2, "programName": "Shop", "title": "bad url", "defaultTrackUri": "ftp://x"},
        {"id": 3, "programName": {"nested": true}, "title": "odd retailer"},
        42
    ]"#;
    let page = parse(&source(FeedKind::Tradedoubler), first(), body).unwrap();
    assert_eq!(page.offers.len(), 1);
    assert_eq!(page.rejected.len(), 3);
    assert_eq!(page.rejected[0].external_id.as_deref(), Some("2"));
}

#[test]
fn malformed_documents_are_feed_errors() {
    for kind in [
        FeedKind::Awin,
        FeedKind::Cj,
        FeedKind::Rakuten,
        FeedKind::Impact,
        FeedKind::Tradedoubler,
        FeedKind::Json,
    ] {
        let got = parse(&source(kind), first(), b"<html>502 Bad Gateway</html>");
        assert!(
            matches!(got, Err(FeedError::Malformed(_))),
            "{kind:?}: {got:?}"
        );
    }
    let got = parse(&source(FeedKind::Csv), first(), b"foo,bar\n1,2\n");
    assert!(matches!(got, Err(FeedError::Malformed(_))), "{got:?}");
}

const KINDS: [FeedKind; 7] = [
    FeedKind::Awin,
    FeedKind::Cj,
    FeedKind::Rakuten,
    FeedKind::Impact,
    FeedKind::Tradedoubler,
    FeedKind::Csv,
    FeedKind::Json,
];

proptest! {
    #[test]
    fn no_adapter_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for kind in KINDS {
            let _ = parse(&source(kind), first(), &bytes);
        }
    }

    /// Mutations of real samples reach deeper into each parser than random bytes do.
    #[test]
    fn no_adapter_panics_on_mutated_samples(at in 0usize..4096, byte: u8, cut in 0usize..4096) {
        let samples: [(FeedKind, &[u8]); 7] = [
            (FeedKind::Awin, fixture!("awin-promotions.json")),
            (FeedKind::Cj, fixture!("cj-link-search.xml")),
            (FeedKind::Rakuten, fixture!("rakuten-coupons.xml")),
            (FeedKind::Impact, fixture!("impact-promocodes-page1.json")),
            (FeedKind::Tradedoubler, fixture!("tradedoubler-vouchers.json")),
            (FeedKind::Csv, fixture!("generic.csv")),
            (FeedKind::Json, fixture!("tradedoubler-vouchers.json")),
        ];
        for (kind, sample) in samples {
            let mut bytes = sample.to_vec();
            let i = at % bytes.len();
            bytes[i] = byte;
            bytes.truncate(cut.max(1).min(bytes.len()));
            let _ = parse(&source(kind), first(), &bytes);
        }
    }
}

#[test]
fn cj_reads_references_cdata_and_faults_and_refuses_cut_documents() {
    let body = br#"<?xml version="1.0"?><cj-api><links total-matched="1" records-returned="1" page-number="1">
<link><advertiser-name>Caf&#233; &amp; Co</advertiser-name><link-id>7</link-id>
<link-name><![CDATA[Half <price> coffee]]></link-name><description>Beans <b>and</b> cups</description>
<coupon-code>BEAN&#x32;</coupon-code><click-commission>0.0</click-commission>
<promotion-start-date>2026-11-01 00:00:00.0</promotion-start-date><promotion-end-date/>
<clickUrl>https://www.anrdoezrs.net/click-1-7?a=1&amp;b=2</clickUrl></link></links></cj-api>"#;
    let page = parse(&source(FeedKind::Cj), first(), body).unwrap();
    assert!(page.rejected.is_empty(), "{:?}", page.rejected);
    let o = &page.offers[0];
    assert_eq!(o.retailer, "Café & Co");
    assert_eq!(o.title, "Half <price> coffee");
    assert_eq!(o.description.as_deref(), Some("Beans and cups"));
    assert_eq!(o.code.as_deref(), Some("BEAN2"));
    assert_eq!(
        o.url.as_deref(),
        Some("https://www.anrdoezrs.net/click-1-7?a=1&b=2")
    );
    assert_eq!(o.ends_at, None);
    assert_eq!(page.next, None);

    let fault = b"<cj-api><error-message>Not authorized</error-message></cj-api>";
    let got = parse(&source(FeedKind::Cj), first(), fault);
    assert!(
        matches!(&got, Err(FeedError::Fault(m)) if m == "Not authorized"),
        "{got:?}"
    );

    let cut = &body[..body.len() - 40];
    let got = parse(&source(FeedKind::Cj), first(), cut);
    assert!(matches!(got, Err(FeedError::Malformed(_))), "{got:?}");
}

proptest! {
    /// Paging numbers at their extremes neither overflow nor point back: a next page is always
    /// the one after the current.
    #[test]
    fn page_arithmetic_cannot_overflow(page in any::<u32>(), total in any::<u64>(), size in any::<u32>(), before in any::<u64>()) {
        let awin = format!(
            r#"{{"data":[{{"promotionId":1,"advertiser":{{"name":"A"}},"title":"x"}}],"pagination":{{"page":{page},"pageSize":{size},"total":{total}}}}}"#
        );
        let cj = format!(
            r#"<cj-api><links total-matched="{total}" records-returned="{total}" page-number="{page}"><link><link-id>1</link-id></link></links></cj-api>"#
        );
        let rakuten = format!(
            r#"<couponfeed><TotalMatches>{total}</TotalMatches><TotalPages>{}</TotalPages><PageNumberRequested>{page}</PageNumberRequested><link><offerdescription>x</offerdescription><advertiserid>1</advertiserid><advertisername>A</advertisername></link></couponfeed>"#,
            total as u32
        );
        let ctx = PageCtx { number: 1, rows_before: before };
        for (kind, body) in [(FeedKind::Awin, awin), (FeedKind::Cj, cj), (FeedKind::Rakuten, rakuten)] {
            if let Ok(p) = parse(&source(kind), ctx, body.as_bytes())
                && let Some(PageRef::Number(next)) = p.next
            {
                prop_assert_eq!(u64::from(next), u64::from(page) + 1, "{:?}", kind);
            }
        }
    }
}

#[test]
fn feeds_in_the_encodings_real_exports_use_read_like_clean_ones() {
    // A UTF-8 byte-order mark and CRLF line ends.
    let clean = fixture!("generic.csv");
    let mut dirty = b"\xEF\xBB\xBF".to_vec();
    dirty.extend_from_slice(
        &String::from_utf8_lossy(clean)
            .replace('\n', "\r\n")
            .into_bytes(),
    );
    let a = parse(&source(FeedKind::Csv), first(), clean).unwrap();
    let b = parse(&source(FeedKind::Csv), first(), &dirty).unwrap();
    assert_eq!(a.offers, b.offers);
    assert_eq!(a.rejected.len(), b.rejected.len());
    let json = fixture!("tradedoubler-vouchers.json");
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(json);
    assert_eq!(
        parse(&source(FeedKind::Tradedoubler), first(), json)
            .unwrap()
            .offers,
        parse(&source(FeedKind::Tradedoubler), first(), &bom)
            .unwrap()
            .offers
    );

    // Latin-1 declared in the XML prolog.
    let utf8 = String::from_utf8_lossy(fixture!("rakuten-coupons.xml"))
        .replace("Litware Electronics", "Litware Électronique");
    let latin1: Vec<u8> = utf8
        .replacen("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"", 1)
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    assert!(std::str::from_utf8(&latin1).is_err(), "really not UTF-8");
    let a = parse(&source(FeedKind::Rakuten), first(), utf8.as_bytes()).unwrap();
    let b = parse(&source(FeedKind::Rakuten), first(), &latin1).unwrap();
    assert_eq!(a.offers, b.offers);
    assert!(
        b.offers
            .iter()
            .any(|o| o.retailer == "Litware Électronique")
    );
}

#[test]
fn shifting_dates_moves_every_date_and_nothing_else() {
    let text =
        "a,2026-11-01,2026-12-31T23:59:59+01:00,x20261101,12026-11-01,2026-02-30,2026-1-01\n";
    assert_eq!(
        shift_dates(text, 31),
        "a,2026-12-02,2027-01-31T23:59:59+01:00,x20261101,12026-11-01,2026-02-30,2026-1-01\n"
    );
    assert_eq!(
        shift_dates("2024-02-28 to 2024-03-01", 1),
        "2024-02-29 to 2024-03-02"
    );
    assert_eq!(shift_dates("", 5), "");
    assert_eq!(shift_dates("é2026-01-01é", -1), "é2025-12-31é");
}

proptest! {
    /// Shifting there and back gives the text back.
    #[test]
    fn shifting_dates_there_and_back_is_the_identity(days in -40_000i64..40_000, y in 1900i32..2100, doy in 1u32..366) {
        let date = chrono::NaiveDate::from_yo_opt(y, doy).unwrap_or_default();
        let text = format!("from {date},to {date}T10:00:00Z;");
        prop_assert_eq!(shift_dates(&shift_dates(&text, days), -days), text);
    }

    /// The demo feed is active whatever day it is served on: every offer has started and none
    /// has ended.
    #[test]
    fn the_demo_feed_is_active_on_any_day(days in 0i64..40_000) {
        let today = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap() + chrono::Duration::days(days);
        let now = today.and_hms_opt(12, 0, 0).unwrap().and_utc();
        let bytes = builtin("demo", today).unwrap();
        let page = parse(&source(FeedKind::Csv), first(), &bytes).unwrap();
        prop_assert!(page.rejected.is_empty(), "{:?}", page.rejected);
        prop_assert_eq!(page.offers.len(), 12);
        for offer in &page.offers {
            prop_assert!(offer.starts_at.is_none_or(|s| s <= now), "{:?} on {}", offer, today);
            prop_assert!(offer.ends_at.is_none_or(|e| e > now + chrono::Duration::days(30)), "{:?} on {}", offer, today);
        }
    }
}
