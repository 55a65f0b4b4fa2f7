//! Campaign reports: counters and claims/redemptions per day in the campaign's timezone, built
//! from per-quarter-hour tallies kept in memory (every timezone offset is a whole number of
//! quarter hours, so a quarter hour falls on one local day in any zone).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Seconds in a tally slot.
pub const SLOT_SECONDS: i64 = 900;

/// The quarter hour `t` falls in (UTC).
pub fn slot_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(SLOT_SECONDS)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignReport {
    pub campaign_id: uuid::Uuid,
    pub codes_total: u64,
    pub claimed: u64,
    /// Codes redeemed now (a rolled-back redemption no longer counts).
    pub redeemed: u64,
    /// `redeemed ÷ claimed` (0 with no claims).
    pub redemption_rate: f64,
    /// What the standing redemptions took off orders (or drew from gift cards), minor units.
    pub discount_cents_total: i64,
    /// Claims and standing redemptions per day in the campaign's timezone, oldest first.
    pub by_day: Vec<DayRow>,
    /// Why validations of this campaign's codes said `inapplicable`, most frequent first (since
    /// the server started: a validation writes nothing).
    pub top_inapplicable_reasons: Vec<ReasonCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReasonCount {
    pub reason: crate::domain::promotion::Reason,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayRow {
    pub date: NaiveDate,
    pub claimed: u64,
    pub redeemed: u64,
    /// What that day's standing redemptions took off orders, minor units.
    pub discount_cents: i64,
}

/// Claims and redemptions per local date in `tz`, oldest first (days with neither left out).
pub fn by_day(
    claims: &BTreeMap<i64, u64>,
    redemptions: &BTreeMap<i64, u64>,
    discounts: &BTreeMap<i64, i64>,
    tz: chrono_tz::Tz,
) -> Vec<DayRow> {
    let day = |slot: i64| {
        DateTime::from_timestamp(slot * SLOT_SECONDS, 0)
            .unwrap_or_default()
            .with_timezone(&tz)
            .date_naive()
    };
    let mut days: BTreeMap<NaiveDate, (u64, u64, i64)> = BTreeMap::new();
    for (slot, n) in claims {
        days.entry(day(*slot)).or_default().0 += n;
    }
    for (slot, n) in redemptions {
        days.entry(day(*slot)).or_default().1 += n;
    }
    for (slot, d) in discounts {
        days.entry(day(*slot)).or_default().2 += d;
    }
    days.into_iter()
        .filter(|(_, (c, r, _))| *c > 0 || *r > 0)
        .map(|(date, (claimed, redeemed, discount_cents))| DayRow {
            date,
            claimed,
            redeemed,
            discount_cents,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_hours_fall_on_the_local_day() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let mut claims = BTreeMap::new();
        // 23:50 UTC on the 1st is already the 2nd in Kolkata (+05:30), still the 1st in New York.
        *claims
            .entry(slot_of(t("2026-03-01T23:50:00Z")))
            .or_default() += 2;
        *claims
            .entry(slot_of(t("2026-03-01T12:00:00Z")))
            .or_default() += 1;
        let mut redeemed = BTreeMap::new();
        *redeemed
            .entry(slot_of(t("2026-03-02T10:00:00Z")))
            .or_default() += 1;
        let mut discounts = BTreeMap::new();
        discounts.insert(slot_of(t("2026-03-02T10:00:00Z")), 250);
        let kolkata = by_day(&claims, &redeemed, &discounts, chrono_tz::Asia::Kolkata);
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            kolkata,
            vec![
                DayRow {
                    date: d("2026-03-01"),
                    claimed: 1,
                    redeemed: 0,
                    discount_cents: 0
                },
                DayRow {
                    date: d("2026-03-02"),
                    claimed: 2,
                    redeemed: 1,
                    discount_cents: 250
                },
            ]
        );
        let new_york = by_day(&claims, &redeemed, &discounts, chrono_tz::America::New_York);
        assert_eq!(
            new_york[0],
            DayRow {
                date: d("2026-03-01"),
                claimed: 3,
                redeemed: 0,
                discount_cents: 0
            }
        );
    }
}
