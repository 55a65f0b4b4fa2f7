#![allow(clippy::unwrap_used)]

use chrono::{Duration, TimeZone};
use proptest::prelude::*;

use super::*;
use crate::domain::campaign::{CampaignKind, Charset, CodeSpec};
use crate::domain::promotion::{
    Budget, CodeMode, Measure, OrderLine, Per, Period, Promotion, Rules, Scope, Weekday,
};
use crate::domain::user::Timezone;

fn now() -> DateTime<Utc> {
    // A Wednesday, 14:30 UTC (fixed, so weekday and hour rules are deterministic).
    Utc.with_ymd_and_hms(2030, 1, 2, 14, 30, 0).unwrap()
}

fn campaign(discount: Option<Discount>, promotion: Promotion) -> Campaign {
    let at = now();
    Campaign {
        v: Campaign::VERSION,
        id: Uuid::now_v7(),
        name: "c".into(),
        kind: CampaignKind::Discount,
        discount,
        gift_balance_cents: None,
        price_cents: None,
        code: CodeSpec::new(None, Some(8), Charset::Upper, "", "").unwrap(),
        pool_size: 10,
        starts_at: at - Duration::days(1),
        ends_at: at + Duration::days(1),
        timezone: Timezone(chrono_tz::UTC),
        per_customer_limit: 1,
        retailer: None,
        category: None,
        ended_at: None,
        created_at: at,
        updated_at: at,
        promotion,
    }
}

fn held(holder: Uuid, balance: Option<i64>) -> CodeFacts {
    CodeFacts {
        status: CodeStatus::Claimed,
        holder: Some(holder),
        claimed_at: Some(now() - Duration::hours(1)),
        balance_cents: balance,
        disabled: false,
        shared: None,
        holder_tz: None,
    }
}

fn shared(uses: u64, limit: Option<u64>) -> CodeFacts {
    CodeFacts {
        status: CodeStatus::Available,
        holder: None,
        claimed_at: None,
        balance_cents: None,
        disabled: false,
        shared: Some((uses, limit)),
        holder_tz: None,
    }
}

fn line(sku: &str, category: Option<&str>, quantity: u32, price_cents: i64) -> OrderLine {
    OrderLine {
        sku: sku.into(),
        retailer: None,
        category: category.map(Into::into),
        quantity,
        price_cents,
    }
}

fn order(amount: i64) -> Checkout {
    Checkout::new(Some(amount), Some("EUR"), Vec::new()).unwrap()
}

fn run(
    c: &Campaign,
    code: &CodeFacts,
    who: Option<&Customer>,
    usage: &Usage,
    o: &Checkout,
) -> Result<Applied, Reason> {
    let mut cart = Cart::of(o);
    evaluate(c, code, who, usage, o, &mut cart, now())
}

#[test]
fn summer10_takes_ten_percent_over_fifty_capped_at_twenty() {
    let c = campaign(
        Some(Discount::Percent(10)),
        Promotion {
            code_mode: CodeMode::Shared,
            rules: Rules {
                min_order_cents: Some(5000),
                ..Default::default()
            },
            max_discount_cents: Some(2000),
            ..Default::default()
        },
    );
    let me = Customer::Ref("buyer@shop.example".into());
    let code = shared(0, Some(5000));
    let usage = Usage::default();
    assert_eq!(
        run(&c, &code, Some(&me), &usage, &order(4999)),
        Err(Reason::MinOrderNotMet)
    );
    assert_eq!(
        run(&c, &code, Some(&me), &usage, &order(8000))
            .unwrap()
            .discount_cents,
        800
    );
    assert_eq!(
        run(&c, &code, Some(&me), &usage, &order(50_000))
            .unwrap()
            .discount_cents,
        2000,
        "capped"
    );
}

#[test]
fn every_reason_has_a_case_that_gives_it() {
    let me = Uuid::now_v7();
    let user = Customer::User(me);
    let pct = || campaign(Some(Discount::Percent(10)), Promotion::default());
    let usage = Usage::default();
    let o = order(1000);
    let mut seen = std::collections::HashSet::new();
    let mut expect = |reason: Reason, got: Result<Applied, Reason>| {
        assert_eq!(got, Err(reason), "{}", reason.as_str());
        seen.insert(reason);
    };
    expect(
        Reason::NotFound,
        run(&pct(), &held(Uuid::now_v7(), None), Some(&user), &usage, &o),
    );
    let mut disabled = held(me, None);
    disabled.disabled = true;
    expect(Reason::Disabled, run(&pct(), &disabled, None, &usage, &o));
    let mut ended = pct();
    ended.ended_at = Some(now() - Duration::minutes(1));
    expect(
        Reason::Ended,
        run(&ended, &held(me, None), None, &usage, &o),
    );
    let mut over = pct();
    over.ends_at = now() - Duration::minutes(1);
    over.starts_at = now() - Duration::days(2);
    expect(
        Reason::Expired,
        run(&over, &held(me, None), None, &usage, &o),
    );
    let mut later = pct();
    later.starts_at = now() + Duration::minutes(1);
    expect(
        Reason::NotStarted,
        run(&later, &held(me, None), None, &usage, &o),
    );
    let mut paused = pct();
    paused.promotion.paused_at = Some(now());
    expect(
        Reason::Paused,
        run(&paused, &held(me, None), None, &usage, &o),
    );
    let mut available = held(me, None);
    available.status = CodeStatus::Available;
    available.holder = None;
    expect(Reason::NotHeld, run(&pct(), &available, None, &usage, &o));
    let mut used = held(me, None);
    used.status = CodeStatus::Redeemed;
    expect(Reason::Redeemed, run(&pct(), &used, None, &usage, &o));
    expect(
        Reason::Spent,
        run(
            &campaign(None, Promotion::default()),
            &held(me, Some(0)),
            None,
            &usage,
            &o,
        ),
    );
    let mut days = pct();
    days.promotion.validity_days_after_claim = Some(1);
    let mut old = held(me, None);
    old.claimed_at = Some(now() - Duration::days(2));
    expect(Reason::Expired, run(&days, &old, None, &usage, &o));
    let sh = || {
        campaign(
            Some(Discount::Percent(10)),
            Promotion {
                code_mode: CodeMode::Shared,
                ..Default::default()
            },
        )
    };
    expect(
        Reason::UsageLimitReached,
        run(&sh(), &shared(5, Some(5)), Some(&user), &usage, &o),
    );
    expect(
        Reason::CustomerRequired,
        run(&sh(), &shared(0, None), None, &usage, &o),
    );
    expect(
        Reason::CustomerLimitReached,
        run(
            &sh(),
            &shared(0, None),
            Some(&user),
            &Usage {
                customer_uses: 1,
                budgets_used: vec![],
            },
            &o,
        ),
    );
    let budgeted = campaign(
        Some(Discount::Percent(10)),
        Promotion {
            budgets: vec![Budget {
                measure: Measure::DiscountCents,
                limit: 150,
                period: Period::Day,
                per: Per::Campaign,
            }],
            ..Default::default()
        },
    );
    let spent_most = Usage {
        customer_uses: 0,
        budgets_used: vec![100],
    };
    expect(
        Reason::BudgetExhausted,
        run(&budgeted, &held(me, None), None, &spent_most, &o),
    );
    assert_eq!(
        run(&budgeted, &held(me, None), None, &spent_most, &order(500))
            .unwrap()
            .discount_cents,
        50,
        "the last budget cents still go to a discount that fits"
    );
    let with = |rules: Rules| {
        campaign(
            Some(Discount::Percent(10)),
            Promotion {
                rules,
                ..Default::default()
            },
        )
    };
    expect(
        Reason::MinOrderNotMet,
        run(
            &with(Rules {
                min_order_cents: Some(2000),
                ..Default::default()
            }),
            &held(me, None),
            None,
            &usage,
            &o,
        ),
    );
    let items = Checkout::new(None, Some("EUR"), vec![line("A", Some("shoes"), 1, 1000)]).unwrap();
    expect(
        Reason::MinItemsNotMet,
        run(
            &with(Rules {
                min_items: Some(2),
                ..Default::default()
            }),
            &held(me, None),
            None,
            &usage,
            &items,
        ),
    );
    expect(
        Reason::NoMatchingItems,
        run(
            &with(Rules {
                categories: Scope {
                    include: vec!["hats".into()],
                    exclude: vec![],
                },
                ..Default::default()
            }),
            &held(me, None),
            None,
            &usage,
            &items,
        ),
    );
    expect(
        Reason::CurrencyMismatch,
        run(
            &with(Rules {
                currency: Some("USD".into()),
                ..Default::default()
            }),
            &held(me, None),
            None,
            &usage,
            &o,
        ),
    );
    expect(
        Reason::CurrencyMismatch,
        run(
            &campaign(
                Some(Discount::Amount {
                    cents: 500,
                    currency: "GBP".into(),
                }),
                Promotion::default(),
            ),
            &held(me, None),
            None,
            &usage,
            &o,
        ),
    );
    // Wednesday 14:30 UTC.
    expect(
        Reason::OutsideHours,
        run(
            &with(Rules {
                hours: vec![9, 10],
                ..Default::default()
            }),
            &held(me, None),
            None,
            &usage,
            &o,
        ),
    );
    expect(
        Reason::OutsideWeekdays,
        run(
            &with(Rules {
                weekdays: vec![Weekday::Sat, Weekday::Sun],
                ..Default::default()
            }),
            &held(me, None),
            None,
            &usage,
            &o,
        ),
    );
    assert_eq!(seen.len(), Reason::ALL.len(), "every reason has a case");
}

#[test]
fn scoped_discounts_touch_matching_lines_only_rounded_down_per_line() {
    let c = campaign(
        Some(Discount::Percent(15)),
        Promotion {
            rules: Rules {
                categories: Scope {
                    include: vec!["Shoes".into()],
                    exclude: vec![],
                },
                skus: Scope {
                    include: vec![],
                    exclude: vec!["SALE-1".into()],
                },
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let o = Checkout::new(
        None,
        Some("EUR"),
        vec![
            line("A", Some("shoes"), 3, 999),
            line("B", Some("hats"), 1, 5000),
            line("SALE-1", Some("shoes"), 1, 4000),
            line("C", Some("shoes"), 1, 333),
        ],
    )
    .unwrap();
    let a = run(&c, &held(Uuid::nil(), None), None, &Usage::default(), &o).unwrap();
    // 15 % of 2997 = 449.55 → 449; of 333 = 49.95 → 49.
    assert_eq!(a.lines, vec![(0, 449), (3, 49)]);
    assert_eq!(a.discount_cents, 498);
}

#[test]
fn a_local_end_of_day_follows_the_holders_timezone() {
    let mut c = campaign(None, Promotion::default());
    c.ends_at = now() + Duration::days(30);
    c.promotion.validity_days_after_claim = Some(2);
    c.promotion.expire_at_local_end_of_day = true;
    let claimed = Utc.with_ymd_and_hms(2030, 1, 2, 22, 0, 0).unwrap();
    // In Tokyo (+9) the claim + 2 days is 5 Jan 07:00 local: valid until 6 Jan 00:00 local.
    let tokyo = code_expires_at(&c, Some(claimed), Some(chrono_tz::Asia::Tokyo));
    assert_eq!(tokyo, Utc.with_ymd_and_hms(2030, 1, 5, 15, 0, 0).unwrap());
    // In New York (-5) it is 4 Jan 17:00 local: until 5 Jan 00:00 local = 05:00 UTC.
    let ny = code_expires_at(&c, Some(claimed), Some(chrono_tz::America::New_York));
    assert_eq!(ny, Utc.with_ymd_and_hms(2030, 1, 5, 5, 0, 0).unwrap());
    // Never past the campaign's close.
    c.ends_at = claimed + Duration::days(1);
    assert_eq!(code_expires_at(&c, Some(claimed), None), c.ends_at);
}

#[test]
fn gift_cards_draw_down_to_zero_and_roll_back_exactly() {
    let me = Uuid::now_v7();
    let card = campaign(None, Promotion::default());
    let record = |balance| CodeRecord {
        v: 1,
        code: "GIFT".into(),
        campaign_id: card.id,
        status: CodeStatus::Claimed,
        holder: Some(me),
        claimed_at: Some(now()),
        balance_cents: Some(balance),
        created_at: now(),
        order_id: None,
        redeemed_at: None,
    };
    let o = order(9000);
    let a = run(&card, &held(me, Some(5000)), None, &Usage::default(), &o).unwrap();
    assert_eq!((a.discount_cents, a.balance_cents), (5000, Some(0)));
    let (after, r) = redeemed(
        &record(5000),
        &card,
        &a,
        None,
        None,
        false,
        &o,
        Uuid::now_v7(),
        now(),
    );
    let after = after.unwrap();
    assert_eq!(after.status, CodeStatus::Redeemed);
    let back = roll_back(after, &r);
    assert_eq!(
        (back.balance_cents, back.status),
        (Some(5000), CodeStatus::Claimed)
    );
}

fn arb_line() -> impl Strategy<Value = OrderLine> {
    (
        prop::sample::select(vec!["A", "B", "C", "D"]),
        prop::option::of(prop::sample::select(vec!["shoes", "hats"])),
        1u32..5,
        0i64..100_000,
    )
        .prop_map(|(sku, cat, q, p)| line(sku, cat, q, p))
}

fn arb_discount() -> impl Strategy<Value = Discount> {
    prop_oneof![
        (1u8..=100).prop_map(Discount::Percent),
        (1i64..200_000).prop_map(|cents| Discount::Amount {
            cents,
            currency: "EUR".into()
        }),
    ]
}

proptest! {
    #[test]
    fn a_discount_never_exceeds_the_order_the_matching_lines_or_the_cap(
        items in prop::collection::vec(arb_line(), 0..6),
        amount in 0i64..1_000_000,
        discounts in prop::collection::vec(arb_discount(), 1..4),
        cap in prop::option::of(1i64..50_000),
        include in prop::collection::vec(prop::sample::select(vec!["A", "B", "C"]), 0..3),
        exclude_hats in any::<bool>(),
    ) {
        let o = if items.is_empty() {
            Checkout::new(Some(amount), Some("EUR"), items).unwrap()
        } else {
            Checkout::new(None, Some("EUR"), items).unwrap()
        };
        let rules = Rules {
            skus: Scope { include: include.iter().map(|s| s.to_string()).collect(), exclude: vec![] },
            categories: Scope {
                include: vec![],
                exclude: if exclude_hats { vec!["hats".into()] } else { vec![] },
            },
            ..Default::default()
        };
        let mut cart = Cart::of(&o);
        let mut total = 0;
        for d in discounts {
            let capped = matches!(d, Discount::Percent(_)).then_some(cap).flatten();
            let c = campaign(Some(d), Promotion {
                rules: rules.clone(),
                max_discount_cents: capped,
                ..Default::default()
            });
            let before = cart.clone();
            match evaluate(&c, &held(Uuid::nil(), None), None, &Usage::default(), &o, &mut cart, now()) {
                Ok(a) => {
                    prop_assert!(a.discount_cents >= 0);
                    prop_assert!(a.discount_cents <= before.left);
                    if let Some(cap) = capped {
                        prop_assert!(a.discount_cents <= cap);
                    }
                    if !o.items.is_empty() {
                        prop_assert_eq!(a.lines.iter().map(|l| l.1).sum::<i64>(), a.discount_cents);
                        for &(i, d) in &a.lines {
                            prop_assert!(d > 0 && d <= before.lines[i]);
                            prop_assert!(!rules.scoped() || rules.admits(&o.items[i]));
                        }
                    }
                    total += a.discount_cents;
                }
                Err(r) => {
                    prop_assert_eq!(r, Reason::NoMatchingItems);
                    prop_assert_eq!(&cart, &before, "a refusal takes nothing");
                }
            }
        }
        prop_assert!(total <= o.amount_cents);
        prop_assert_eq!(cart.left, o.amount_cents - total);
        prop_assert!(cart.lines.iter().all(|l| *l >= 0));
    }

    #[test]
    fn a_gift_balance_never_goes_below_zero(
        start in 1i64..1_000_000,
        orders in prop::collection::vec(0i64..2_000_000, 1..20),
    ) {
        let me = Uuid::now_v7();
        let card = campaign(None, Promotion::default());
        let mut balance = start;
        let mut drawn = 0;
        for amount in orders {
            match run(&card, &held(me, Some(balance)), None, &Usage::default(), &order(amount)) {
                Ok(a) => {
                    prop_assert!(a.discount_cents >= 0 && a.discount_cents <= amount);
                    drawn += a.discount_cents;
                    balance = a.balance_cents.unwrap();
                }
                Err(e) => prop_assert_eq!(e, Reason::Spent),
            }
            prop_assert!(balance >= 0);
            prop_assert_eq!(balance + drawn, start);
        }
    }

    #[test]
    fn a_budget_is_never_overdrawn_and_a_rollback_gives_back_exactly(
        limit in 1i64..5_000,
        amounts in prop::collection::vec(0i64..3_000, 1..40),
        undo in prop::collection::vec(any::<bool>(), 40),
    ) {
        let budget = Budget { measure: Measure::DiscountCents, limit, period: Period::Total, per: Per::Campaign };
        let c = campaign(Some(Discount::Percent(50)), Promotion { budgets: vec![budget], ..Default::default() });
        let mut used = 0;
        let mut taken = Vec::new();
        for (i, amount) in amounts.into_iter().enumerate() {
            let usage = Usage { customer_uses: 0, budgets_used: vec![used] };
            match run(&c, &held(Uuid::nil(), None), None, &usage, &order(amount)) {
                Ok(a) => {
                    used += budget.cost(a.discount_cents);
                    taken.push(a.discount_cents);
                }
                Err(e) => prop_assert_eq!(e, Reason::BudgetExhausted),
            }
            prop_assert!(used >= 0 && used <= limit);
            if undo[i] && let Some(d) = taken.pop() {
                let before = used;
                used -= budget.cost(d);
                prop_assert_eq!(before - used, d);
            }
        }
        prop_assert_eq!(used, taken.iter().sum::<i64>());
    }
}

/// A code of the cart property test: which campaign, and shared (its limit and uses so far) or
/// a unique code the customer holds (with a balance for a gift card).
#[derive(Debug, Clone)]
enum ArbCode {
    Shared { limit: Option<u64>, uses: u64 },
    Unique,
}

fn arb_budget() -> impl Strategy<Value = Budget> {
    (any::<bool>(), any::<bool>(), 1i64..30_000, 1i64..4).prop_map(
        |(money, per_customer, cents, n)| Budget {
            measure: if money {
                Measure::DiscountCents
            } else {
                Measure::Redemptions
            },
            limit: if money { cents } else { n },
            period: Period::Total,
            per: if per_customer {
                Per::Customer
            } else {
                Per::Campaign
            },
        },
    )
}

fn arb_campaign() -> impl Strategy<Value = Campaign> {
    (
        prop::option::of(arb_discount()),
        1u32..4,
        prop::collection::vec(arb_budget(), 0..3),
        prop::option::of(1i64..20_000),
    )
        .prop_map(|(discount, limit, budgets, cap)| {
            let mut c = campaign(
                discount,
                Promotion {
                    budgets,
                    max_discount_cents: cap,
                    ..Default::default()
                },
            );
            c.per_customer_limit = limit;
            c
        })
}

fn arb_code() -> impl Strategy<Value = (usize, ArbCode, i64)> {
    (
        0usize..2,
        prop_oneof![
            (prop::option::of(1u64..4), 0u64..3)
                .prop_map(|(limit, uses)| ArbCode::Shared { limit, uses }),
            Just(ArbCode::Unique),
        ],
        1i64..60_000,
    )
}

/// What the redemptions made so far use, as the store counts them from their records.
fn usage_of(made: &[Redemption], c: &Campaign, who: Option<&Customer>) -> Usage {
    let mine = |r: &&Redemption| r.campaign_id == c.id;
    Usage {
        customer_uses: made
            .iter()
            .filter(mine)
            .filter(|r| r.shared && who.is_some() && r.customer_key().as_ref() == who)
            .count() as u32,
        budgets_used: c
            .promotion
            .budgets
            .iter()
            .map(|b| {
                made.iter()
                    .filter(mine)
                    .filter(|r| {
                        b.per == Per::Campaign
                            || (who.is_some() && r.customer_key().as_ref() == who)
                    })
                    .map(|r| b.cost(r.discount_cents))
                    .sum()
            })
            .collect(),
    }
}

proptest! {
    /// A cart's codes evaluated together give, code by code, exactly what redeeming them one
    /// after another would give: each redemption written before the next code is looked at,
    /// its counters (uses, a customer's allowance, budgets, a gift balance) read back from the
    /// redemptions made. So a validation never promises more than the redemptions give.
    #[test]
    fn a_cart_is_what_redeeming_its_codes_one_after_another_gives(
        campaigns in prop::collection::vec(arb_campaign(), 2),
        codes in prop::collection::vec(arb_code(), 1..6),
        items in prop::collection::vec(arb_line(), 0..4),
        amount in 0i64..200_000,
        by_ref in any::<bool>(),
    ) {
        let me = Uuid::now_v7();
        let customer = if by_ref { Customer::Ref("ann@example.org".into()) } else { Customer::User(me) };
        let o = if items.is_empty() {
            Checkout::new(Some(amount), Some("EUR"), items).unwrap()
        } else {
            Checkout::new(None, Some("EUR"), items).unwrap()
        };
        let names: Vec<String> = (0..codes.len()).map(|i| format!("C{i}")).collect();
        // Every code as stored: a record and the facts the engine reads.
        let mut records = Vec::new();
        let mut facts = Vec::new();
        for (i, (c, kind, balance)) in codes.iter().enumerate() {
            let campaign = &campaigns[*c];
            let gift = campaign.discount.is_none();
            let (f, held_by) = match kind {
                ArbCode::Shared { limit, uses } if !gift => (shared(*uses, *limit), None),
                _ => (held(me, gift.then_some(*balance)), Some(me)),
            };
            records.push(CodeRecord {
                v: 1,
                code: names[i].clone(),
                campaign_id: campaign.id,
                status: f.status,
                holder: held_by,
                claimed_at: f.claimed_at,
                balance_cents: f.balance_cents,
                created_at: now(),
                order_id: None,
                redeemed_at: None,
            });
            facts.push(f);
        }
        let cart: Vec<CartCode<'_>> = codes
            .iter()
            .enumerate()
            .map(|(i, (c, _, _))| CartCode { code: &names[i], campaign: &campaigns[*c], facts: facts[i].clone() })
            .collect();
        let together = evaluate_cart(&cart, Some(&customer), |c, who| usage_of(&[], c, who), &o, now());

        // One after another: each code's facts and counters as the redemptions so far left them.
        let mut made: Vec<Redemption> = Vec::new();
        let mut left = Cart::of(&o);
        for (i, (c, _, _)) in codes.iter().enumerate() {
            let campaign = &campaigns[*c];
            let mut f = facts[i].clone();
            if let Some((uses, limit)) = f.shared {
                let more = made.iter().filter(|r| r.code == names[i]).count() as u64;
                f.shared = Some((uses + more, limit));
            } else {
                f.status = records[i].status;
                f.balance_cents = records[i].balance_cents;
            }
            let who = counted_for(&f, Some(&customer));
            let usage = usage_of(&made, campaign, who.as_ref());
            let alone = evaluate(campaign, &f, Some(&customer), &usage, &o, &mut left, now());
            prop_assert_eq!(&alone, &together[i], "code {} of {:?}", i, codes);
            if let Ok(applied) = alone {
                let (after, r) = redeemed(
                    &records[i], campaign, &applied, Some(&customer), None,
                    f.shared.is_some(), &o, Uuid::now_v7(), now(),
                );
                if let Some(after) = after {
                    records[i] = after;
                }
                made.push(r);
            }
        }
        // Never more than the order, whatever was stacked.
        let total: i64 = together.iter().filter_map(|r| r.as_ref().ok()).map(|a| a.discount_cents).sum();
        prop_assert!(total <= o.amount_cents);
    }
}

#[test]
fn the_second_use_of_a_customers_allowance_in_one_cart_is_refused() {
    let me = Customer::Ref("ann@example.org".into());
    // Two shared codes of one campaign, once per customer, 20.00 budget in all.
    let budget = Budget {
        measure: Measure::DiscountCents,
        limit: 2000,
        period: Period::Total,
        per: Per::Campaign,
    };
    let c = campaign(
        Some(Discount::Percent(10)),
        Promotion {
            budgets: vec![budget],
            max_discount_cents: Some(2000),
            ..Default::default()
        },
    );
    let codes = [
        CartCode {
            code: "SUMMER10",
            campaign: &c,
            facts: shared(0, Some(1)),
        },
        CartCode {
            code: "SUMMER-B",
            campaign: &c,
            facts: shared(0, Some(1)),
        },
    ];
    let usage = |c: &Campaign, _: Option<&Customer>| Usage {
        customer_uses: 0,
        budgets_used: vec![0; c.promotion.budgets.len()],
    };
    let got = evaluate_cart(&codes, Some(&me), usage, &order(100_000), now());
    assert_eq!(got[0].as_ref().map(|a| a.discount_cents), Ok(2000));
    assert_eq!(got[1], Err(Reason::CustomerLimitReached));
    // With an allowance of two, the budget stops the second.
    let mut two = c.clone();
    two.per_customer_limit = 2;
    let codes = [
        CartCode {
            code: "SUMMER10",
            campaign: &two,
            facts: shared(0, None),
        },
        CartCode {
            code: "SUMMER-B",
            campaign: &two,
            facts: shared(0, None),
        },
    ];
    let got = evaluate_cart(&codes, Some(&me), usage, &order(100_000), now());
    assert_eq!(got[1], Err(Reason::BudgetExhausted));
}
