#![allow(clippy::unwrap_used)]

use chrono::TimeZone;

use super::*;

#[test]
fn an_order_adds_up_or_is_refused() {
    let line = |q, p| OrderLine {
        sku: "A".into(),
        retailer: None,
        category: None,
        quantity: q,
        price_cents: p,
    };
    let o = Checkout::new(None, Some("EUR"), vec![line(2, 500), line(1, 250)]).unwrap();
    assert_eq!((o.amount_cents, o.item_count()), (1250, 3));
    assert!(Checkout::new(Some(1250), Some("EUR"), vec![line(2, 500), line(1, 250)]).is_ok());
    let e = Checkout::new(Some(1000), Some("EUR"), vec![line(2, 500), line(1, 250)]).unwrap_err();
    assert_eq!(e.field, "order.amount_cents");
    assert!(Checkout::new(None, Some("EUR"), vec![]).is_err());
    assert!(Checkout::new(Some(10), Some("eur"), vec![]).is_err());
    assert!(Checkout::new(None, Some("EUR"), vec![line(0, 5)]).is_err());
    assert!(Checkout::new(None, Some("EUR"), vec![line(1, -5)]).is_err());
    assert!(Checkout::new(None, Some("EUR"), vec![line(10_000, MAX_ORDER_CENTS)]).is_err());
}

#[test]
fn periods_are_counted_in_the_campaigns_timezone() {
    let paris = chrono_tz::Europe::Paris;
    // 23:30 UTC on Sunday 31 March 2030 is already Monday 1 April in Paris.
    let t = Utc.with_ymd_and_hms(2030, 3, 31, 23, 30, 0).unwrap();
    let day = period_of(Period::Day, t, paris);
    assert_eq!(
        period_start(Period::Day, day),
        NaiveDate::from_ymd_opt(2030, 4, 1)
    );
    let week = period_of(Period::Week, t, paris);
    assert_eq!(
        period_start(Period::Week, week),
        NaiveDate::from_ymd_opt(2030, 4, 1)
    );
    let month = period_of(Period::Month, t, paris);
    assert_eq!(
        period_start(Period::Month, month),
        NaiveDate::from_ymd_opt(2030, 4, 1)
    );
    assert_eq!(
        period_of(Period::Month, t, chrono_tz::UTC),
        month - 1,
        "still March in UTC"
    );
    assert_eq!(period_of(Period::Total, t, paris), 0);
}

#[test]
fn a_customer_reference_is_normalised() {
    assert_eq!(
        Customer::reference("  Ann@Example.ORG ").unwrap(),
        Customer::Ref("ann@example.org".into())
    );
    assert_eq!(
        Customer::reference("Shop-42").unwrap(),
        Customer::Ref("Shop-42".into()),
        "an id keeps its case"
    );
    assert!(Customer::reference("   ").is_err());
    assert!(Customer::reference(&"x".repeat(201)).is_err());
}

#[test]
fn rules_are_checked_and_tidied() {
    let r = Rules {
        hours: vec![9, 9, 8],
        weekdays: vec![Weekday::Mon, Weekday::Mon],
        currency: Some("EUR".into()),
        ..Default::default()
    }
    .checked()
    .unwrap();
    assert_eq!((r.hours, r.weekdays), (vec![8, 9], vec![Weekday::Mon]));
    assert!(
        Rules {
            hours: vec![24],
            ..Default::default()
        }
        .checked()
        .is_err()
    );
    assert!(
        Rules {
            currency: Some("euro".into()),
            ..Default::default()
        }
        .checked()
        .is_err()
    );
    let every_reason: std::collections::HashSet<&str> =
        Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(every_reason.len(), Reason::ALL.len(), "names are distinct");
}

#[test]
fn an_excluded_sku_stays_excluded_however_it_is_written() {
    let rules = Rules {
        skus: Scope {
            include: Vec::new(),
            exclude: vec!["GIFTCARD".into()],
        },
        categories: Scope {
            include: vec!["Shoes".into()],
            exclude: Vec::new(),
        },
        ..Rules::default()
    };
    let line = |sku: &str, category: &str| OrderLine {
        sku: sku.into(),
        retailer: None,
        category: Some(category.into()),
        quantity: 1,
        price_cents: 100,
    };
    for sku in [
        "GIFTCARD",
        "giftcard",
        "GIFTCARD ",
        "ＧＩＦＴＣＡＲＤ",
        "GİFTCARD",
        " GiftCard",
    ] {
        assert!(
            !rules.admits(&line(sku, "shoes")),
            "{sku:?} slipped through"
        );
    }
    assert!(rules.admits(&line("RUN-1", "SHOES")));
    assert!(rules.admits(&line("RUN-1", "ｓｈｏｅｓ ")));
    assert!(!rules.admits(&line("RUN-1", "Hats")));
}
