//! Digest timing: when a user's next digest is due, DST-correct, and which period it is for.
//!
//! A period is named by its local date: the day itself for daily digests, the date of the
//! configured weekday for weekly ones. "Once per period" is kept by the store (one digest record
//! per user and period); this module only says *when*.
//!
//! Local times that do not exist (spring forward) are sent at the first valid instant after them;
//! local times that occur twice (fall back) are sent at the first of the two, and since the period
//! is then done, never at the second.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::user::DigestFrequency;

/// What a user's schedule depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub tz: Tz,
    pub hour: u8,
    pub frequency: DigestFrequency,
    pub weekday: Weekday,
}

/// The next digest: when it is due and the period it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    pub at: DateTime<Utc>,
    pub period: NaiveDate,
}

/// The instant of `hour`:00 local time on `date` in `tz`: the earlier one when the local time
/// occurs twice, the first valid instant after it when it does not exist.
pub fn local_instant(tz: Tz, date: NaiveDate, hour: u8) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(u32::from(hour.min(23)), 0, 0).unwrap_or(NaiveTime::MIN);
    let local = date.and_time(time);
    // Gaps are at most a few hours (a whole day once, Samoa 2011): walk forward a minute at a
    // time to the first local time that exists; that is the instant the clocks jumped.
    for minutes in 0..=(26 * 60) {
        let candidate = local + Duration::minutes(minutes);
        match tz.from_local_datetime(&candidate) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => {}
        }
    }
    Utc.from_utc_datetime(&local)
}

impl Cadence {
    /// The period a local date belongs to; `None` when digests are off.
    pub fn period_of(&self, local: NaiveDate) -> Option<NaiveDate> {
        match self.frequency {
            DigestFrequency::Off => None,
            DigestFrequency::Daily => Some(local),
            DigestFrequency::Weekly => {
                let back = (7 + local.weekday().num_days_from_monday()
                    - self.weekday.num_days_from_monday())
                    % 7;
                Some(local - Duration::days(i64::from(back)))
            }
        }
    }

    /// The period of the instant `now` in the user's timezone.
    pub fn current_period(&self, now: DateTime<Utc>) -> Option<NaiveDate> {
        self.period_of(now.with_timezone(&self.tz).date_naive())
    }

    /// How far back the first digest looks when there was none before: one period.
    pub fn length(&self) -> Duration {
        match self.frequency {
            DigestFrequency::Weekly => Duration::days(7),
            _ => Duration::days(1),
        }
    }

    /// The first digest due at or after `now` for a period later than `done` (the last period
    /// already handled). `None` when digests are off.
    pub fn next_due(&self, now: DateTime<Utc>, done: Option<NaiveDate>) -> Option<Due> {
        let step = match self.frequency {
            DigestFrequency::Off => return None,
            DigestFrequency::Daily => 1,
            DigestFrequency::Weekly => 7,
        };
        let today = now.with_timezone(&self.tz).date_naive();
        // Start a period early: a due instant shifted past a gap may still lie ahead.
        let mut period = self.period_of(today)? - Duration::days(step);
        for _ in 0..4 {
            if done.is_none_or(|d| period > d) {
                let at = local_instant(self.tz, period, self.hour);
                if at >= now {
                    return Some(Due { at, period });
                }
            }
            period += Duration::days(step);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn daily(tz: &str, hour: u8) -> Cadence {
        Cadence {
            tz: tz.parse().unwrap(),
            hour,
            frequency: DigestFrequency::Daily,
            weekday: Weekday::Mon,
        }
    }

    /// Every due instant of a cadence from `from`, following one period after another.
    fn walk(c: &Cadence, from: &str, n: usize) -> Vec<(String, String)> {
        let mut now = utc(from);
        let mut done = None;
        let mut out = Vec::new();
        for _ in 0..n {
            let due = c.next_due(now, done).unwrap();
            out.push((due.period.to_string(), due.at.to_rfc3339()));
            now = due.at;
            done = Some(due.period);
        }
        out
    }

    #[test]
    fn new_york_spring_forward_skipped_hour_sends_at_the_first_valid_instant() {
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:xx does not exist.
        let at2 = walk(&daily("America/New_York", 2), "2026-03-07T00:00:00Z", 3);
        assert_eq!(
            at2,
            [
                ("2026-03-07".into(), "2026-03-07T07:00:00+00:00".into()),
                ("2026-03-08".into(), "2026-03-08T07:00:00+00:00".into()), // 03:00 EDT
                ("2026-03-09".into(), "2026-03-09T06:00:00+00:00".into()), // 02:00 EDT
            ]
        );
        let at1 = walk(&daily("America/New_York", 1), "2026-03-07T00:00:00Z", 3);
        assert_eq!(
            at1.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
            [
                "2026-03-07T06:00:00+00:00",
                "2026-03-08T06:00:00+00:00", // 01:00 EST, before the jump
                "2026-03-09T05:00:00+00:00", // 01:00 EDT
            ]
        );
    }

    #[test]
    fn new_york_fall_back_repeated_hour_sends_once() {
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:xx happens twice.
        let at1 = walk(&daily("America/New_York", 1), "2026-10-31T00:00:00Z", 3);
        assert_eq!(
            at1,
            [
                ("2026-10-31".into(), "2026-10-31T05:00:00+00:00".into()),
                ("2026-11-01".into(), "2026-11-01T05:00:00+00:00".into()), // first 01:00 (EDT)
                ("2026-11-02".into(), "2026-11-02T06:00:00+00:00".into()), // the next day, EST
            ]
        );
        // Asked just after the first 01:00 of the fold, with that period done: the second 01:00
        // (06:00 UTC) is not a new period.
        let c = daily("America/New_York", 1);
        let next = c
            .next_due(utc("2026-11-01T05:00:01Z"), Some(date("2026-11-01")))
            .unwrap();
        assert_eq!(next.at, utc("2026-11-02T06:00:00Z"));
        let at2 = walk(&daily("America/New_York", 2), "2026-10-31T00:00:00Z", 3);
        assert_eq!(
            at2.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
            [
                "2026-10-31T06:00:00+00:00",
                "2026-11-01T07:00:00+00:00", // 02:00 EST, once
                "2026-11-02T07:00:00+00:00",
            ]
        );
    }

    #[test]
    fn berlin_kolkata_and_chatham() {
        // Berlin: CET → CEST on 2026-03-29 at 02:00; 02:30 → first valid is 03:00 CEST.
        let berlin = walk(&daily("Europe/Berlin", 2), "2026-03-28T00:00:00Z", 3);
        assert_eq!(
            berlin.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
            [
                "2026-03-28T01:00:00+00:00",
                "2026-03-29T01:00:00+00:00", // 03:00 CEST = the jump
                "2026-03-30T00:00:00+00:00",
            ]
        );
        let berlin8 = walk(&daily("Europe/Berlin", 8), "2026-10-24T12:00:00Z", 2);
        assert_eq!(
            berlin8.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
            ["2026-10-25T07:00:00+00:00", "2026-10-26T07:00:00+00:00"]
        );
        // Kolkata: +05:30 all year.
        let kolkata = walk(&daily("Asia/Kolkata", 8), "2026-01-01T00:00:00Z", 2);
        assert_eq!(
            kolkata,
            [
                ("2026-01-01".into(), "2026-01-01T02:30:00+00:00".into()),
                ("2026-01-02".into(), "2026-01-02T02:30:00+00:00".into()),
            ]
        );
        // Chatham: +12:45, +13:45 in summer. 2026-09-27 02:45 → 03:45; hour 3 falls in the gap.
        let chatham = walk(&daily("Pacific/Chatham", 3), "2026-09-25T00:00:00Z", 3);
        assert_eq!(
            chatham,
            [
                ("2026-09-26".into(), "2026-09-25T14:15:00+00:00".into()), // 03:00 +12:45
                ("2026-09-27".into(), "2026-09-26T14:00:00+00:00".into()), // 03:45 +13:45
                ("2026-09-28".into(), "2026-09-27T13:15:00+00:00".into()), // 03:00 +13:45
            ]
        );
        // 2026-04-05 03:45 → 02:45: hour 3 occurs twice, sent at the first (+13:45).
        let back = daily("Pacific/Chatham", 3)
            .next_due(utc("2026-04-04T12:00:00Z"), None)
            .unwrap();
        assert_eq!(back.period, date("2026-04-05"));
        assert_eq!(back.at, utc("2026-04-04T13:15:00Z"));
    }

    #[test]
    fn weekly_goes_out_on_the_local_weekday_and_off_never() {
        let mut c = daily("Asia/Kolkata", 9);
        c.frequency = DigestFrequency::Weekly;
        c.weekday = Weekday::Wed;
        // Thursday 2026-11-19: the next Wednesday is 2026-11-25.
        let w = walk(&c, "2026-11-19T00:00:00Z", 2);
        assert_eq!(
            w,
            [
                ("2026-11-25".into(), "2026-11-25T03:30:00+00:00".into()),
                ("2026-12-02".into(), "2026-12-02T03:30:00+00:00".into()),
            ]
        );
        assert_eq!(c.period_of(date("2026-11-24")), Some(date("2026-11-18")));
        assert_eq!(c.period_of(date("2026-11-25")), Some(date("2026-11-25")));
        c.frequency = DigestFrequency::Off;
        assert_eq!(c.next_due(utc("2026-11-19T00:00:00Z"), None), None);
    }

    #[test]
    fn a_passed_hour_today_means_tomorrow_and_a_done_period_is_skipped() {
        let c = daily("Europe/Berlin", 8);
        let due = c.next_due(utc("2026-06-10T10:00:00Z"), None).unwrap();
        assert_eq!(due.period, date("2026-06-11"));
        // Before the hour, but today's digest already went (an admin run): tomorrow.
        let due = c
            .next_due(utc("2026-06-10T04:00:00Z"), Some(date("2026-06-10")))
            .unwrap();
        assert_eq!(due.at, utc("2026-06-11T06:00:00Z"));
    }

    proptest::proptest! {
        /// Over any timezone, hour and start, due instants strictly increase, one per period,
        /// each period's instant lies on that local date (or just after a gap) and no period
        /// repeats.
        #[test]
        fn due_instants_advance_one_period_at_a_time(
            tz_index in 0usize..chrono_tz::TZ_VARIANTS.len(),
            hour in 0u8..24,
            start in 1_700_000_000i64..1_900_000_000,
        ) {
            let c = Cadence {
                tz: chrono_tz::TZ_VARIANTS[tz_index],
                hour,
                frequency: DigestFrequency::Daily,
                weekday: Weekday::Mon,
            };
            let mut now = DateTime::from_timestamp(start, 0).unwrap();
            let mut done: Option<NaiveDate> = None;
            for _ in 0..10 {
                let due = c.next_due(now, done).unwrap();
                proptest::prop_assert!(due.at >= now);
                if let Some(d) = done {
                    proptest::prop_assert!(due.period > d);
                }
                let local = due.at.with_timezone(&c.tz).naive_local();
                proptest::prop_assert!(local >= due.period.and_hms_opt(u32::from(hour), 0, 0).unwrap());
                proptest::prop_assert!(local - due.period.and_hms_opt(u32::from(hour), 0, 0).unwrap() <= Duration::hours(24));
                now = due.at;
                done = Some(due.period);
            }
        }
    }
}
