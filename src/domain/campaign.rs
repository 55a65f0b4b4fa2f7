//! Campaigns and their codes: what a campaign gives (a discount, a flash-sale price, a gift
//! balance), when, to how many, and the codes that carry it. Plain types and rules, no I/O.

use chrono::{DateTime, Utc};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ValidationError;
use super::user::Timezone;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    Discount,
    FlashSale,
    GiftCard,
}

/// What a code takes off an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Discount {
    /// 1 to 100 percent of the order.
    Percent(u8),
    /// A fixed amount in minor units of `currency` (ISO 4217, three letters).
    Amount { cents: i64, currency: String },
}

/// The characters a generated code draws from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Charset {
    Alphanumeric,
    Alphabetic,
    Numbers,
    Upper,
    Lower,
    Custom(String),
}

impl Charset {
    pub fn chars(&self) -> Vec<char> {
        let range = |a: char, b: char| (a..=b).collect::<Vec<char>>();
        match self {
            Charset::Alphanumeric => [range('0', '9'), range('A', 'Z'), range('a', 'z')].concat(),
            Charset::Alphabetic => [range('A', 'Z'), range('a', 'z')].concat(),
            Charset::Numbers => range('0', '9'),
            Charset::Upper => range('A', 'Z'),
            Charset::Lower => range('a', 'z'),
            Charset::Custom(s) => {
                let mut chars: Vec<char> = s.chars().collect();
                chars.sort_unstable();
                chars.dedup();
                chars
            }
        }
    }

    pub fn parse(name: &str) -> Result<Self, ValidationError> {
        Ok(match name {
            "alphanumeric" => Charset::Alphanumeric,
            "alphabetic" => Charset::Alphabetic,
            "numbers" => Charset::Numbers,
            "upper" => Charset::Upper,
            "lower" => Charset::Lower,
            _ => {
                return Err(ValidationError::new(
                    "code.charset",
                    "must be alphanumeric, alphabetic, numbers, upper or lower (or give custom_charset)",
                ));
            }
        })
    }
}

/// How a campaign's codes are generated: `pattern` with `#` for each random character (or
/// `length` random characters), between `prefix` and `postfix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeSpec {
    pub pattern: String,
    pub charset: Charset,
    pub prefix: String,
    pub postfix: String,
}

/// The longest code, generated or imported.
pub const MAX_CODE_LEN: usize = 64;

impl CodeSpec {
    /// From the request's parts: a pattern, or a length (default 8) of `#`.
    pub fn new(
        pattern: Option<&str>,
        length: Option<u32>,
        charset: Charset,
        prefix: &str,
        postfix: &str,
    ) -> Result<Self, ValidationError> {
        let err = |m: &str| ValidationError::new("code", m);
        let pattern = match (pattern, length) {
            (Some(p), None) => p.to_owned(),
            (None, Some(n)) if (1..=32).contains(&n) => "#".repeat(n as usize),
            (None, Some(_)) => return Err(err("length must be 1 to 32")),
            (None, None) => "#".repeat(8),
            (Some(_), Some(_)) => return Err(err("give pattern or length, not both")),
        };
        if !pattern.contains('#') {
            return Err(err("pattern needs at least one # (a random character)"));
        }
        let spec = Self {
            pattern,
            charset,
            prefix: prefix.to_owned(),
            postfix: postfix.to_owned(),
        };
        let chars = spec.charset.chars();
        if chars.len() < 2 {
            return Err(err("the charset needs at least two distinct characters"));
        }
        if chars
            .iter()
            .any(|c| c.is_control() || c.is_whitespace() || *c == '#')
        {
            return Err(err(
                "the charset may not hold spaces, control characters or #",
            ));
        }
        let fixed = format!("{}{}{}", spec.prefix, spec.pattern, spec.postfix);
        if fixed.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(err(
                "prefix, pattern and postfix may not hold spaces or control characters",
            ));
        }
        if fixed.chars().count() > MAX_CODE_LEN {
            return Err(err("a code may be at most 64 characters"));
        }
        Ok(spec)
    }

    /// How many distinct codes the pattern can make (saturating).
    pub fn space(&self) -> u128 {
        let n = self.charset.chars().len() as u128;
        let slots = self.pattern.chars().filter(|c| *c == '#').count() as u32;
        n.checked_pow(slots).unwrap_or(u128::MAX)
    }

    /// One code, from a cryptographic RNG (`rand`'s thread RNG is a CSPRNG).
    pub fn generate(&self, rng: &mut impl RngExt) -> String {
        let chars = self.charset.chars();
        let mut out = String::with_capacity(self.prefix.len() + self.pattern.len() + 8);
        out.push_str(&self.prefix);
        for c in self.pattern.chars() {
            if c == '#' {
                out.push(chars[rng.random_range(0..chars.len())]);
            } else {
                out.push(c);
            }
        }
        out.push_str(&self.postfix);
        out
    }
}

/// A code as given for import: 1 to 64 characters, no spaces or control characters.
pub fn check_code(code: &str) -> Result<(), ValidationError> {
    let n = code.chars().count();
    if n == 0 || n > MAX_CODE_LEN || code.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ValidationError::new(
            "codes",
            format!("`{code}`: a code is 1 to 64 characters, no spaces or control characters"),
        ));
    }
    Ok(())
}

/// The stored campaign (`campaigns` tree, by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub v: u16,
    pub id: Uuid,
    pub name: String,
    pub kind: CampaignKind,
    pub discount: Option<Discount>,
    pub gift_balance_cents: Option<i64>,
    pub price_cents: Option<i64>,
    pub code: CodeSpec,
    pub pool_size: u32,
    #[serde(with = "crate::domain::times::micros")]
    pub starts_at: DateTime<Utc>,
    #[serde(with = "crate::domain::times::micros")]
    pub ends_at: DateTime<Utc>,
    pub timezone: Timezone,
    pub per_customer_limit: u32,
    pub retailer: Option<String>,
    pub category: Option<String>,
    /// Set by `POST …/end`: claims stop at once.
    #[serde(with = "crate::domain::times::micros_opt")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::times::micros")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// No codes yet.
    Draft,
    /// Has codes; its window has not opened.
    Scheduled,
    Active,
    /// Its window closed, or it was ended.
    Ended,
}

impl Campaign {
    pub const VERSION: u16 = 1;
    /// The largest pool one campaign may have.
    pub const MAX_POOL: u32 = 1_000_000;

    pub fn status(&self, codes_total: u64, now: DateTime<Utc>) -> CampaignStatus {
        if self.ended_at.is_some() || now >= self.ends_at {
            CampaignStatus::Ended
        } else if codes_total == 0 {
            CampaignStatus::Draft
        } else if now < self.starts_at {
            CampaignStatus::Scheduled
        } else {
            CampaignStatus::Active
        }
    }

    /// When claims stop: the end of the window, or when it was ended.
    pub fn closes_at(&self) -> DateTime<Utc> {
        self.ended_at.map_or(self.ends_at, |e| e.min(self.ends_at))
    }

    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && now >= self.starts_at && now < self.ends_at
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeStatus {
    Available,
    Claimed,
    Redeemed,
}

/// The stored code (`codes` tree, by the code itself: unique across the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub v: u16,
    pub code: String,
    pub campaign_id: Uuid,
    pub status: CodeStatus,
    pub holder: Option<Uuid>,
    #[serde(with = "crate::domain::times::micros_opt")]
    pub claimed_at: Option<DateTime<Utc>>,
    /// What is left on a gift card.
    pub balance_cents: Option<i64>,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
}

impl CodeRecord {
    pub const VERSION: u16 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_space_of_a_pattern_counts_its_random_slots() {
        let spec = CodeSpec::new(Some("SALE-####"), None, Charset::Numbers, "", "").unwrap();
        assert_eq!(spec.space(), 10_000);
        let wide = CodeSpec::new(None, Some(32), Charset::Alphanumeric, "", "").unwrap();
        assert_eq!(wide.space(), u128::MAX, "62^32 saturates");
        assert!(CodeSpec::new(Some("SALE"), None, Charset::Numbers, "", "").is_err());
        assert!(CodeSpec::new(None, Some(8), Charset::Custom("a".into()), "", "").is_err());
        assert!(CodeSpec::new(None, Some(8), Charset::Custom("a b".into()), "", "").is_err());
        assert!(CodeSpec::new(None, Some(60), Charset::Upper, "XMAS-", "").is_err());
    }

    proptest! {
        #[test]
        fn generated_codes_follow_their_pattern(
            pattern in "[A-Z-]{0,6}#{1,8}[A-Z-]{0,6}",
            custom in "[a-f0-9]{2,16}",
            prefix in "[A-Z]{0,4}",
            postfix in "[0-9]{0,4}",
            charset in 0usize..6,
        ) {
            let charset = match charset {
                0 => Charset::Alphanumeric,
                1 => Charset::Alphabetic,
                2 => Charset::Numbers,
                3 => Charset::Upper,
                4 => Charset::Lower,
                _ => Charset::Custom(custom),
            };
            let spec = CodeSpec::new(Some(&pattern), None, charset.clone(), &prefix, &postfix);
            let Ok(spec) = spec else {
                // Only a charset of fewer than two distinct characters is refused here.
                prop_assert!(charset.chars().len() < 2);
                return Ok(());
            };
            let allowed = charset.chars();
            let code = spec.generate(&mut rand::rng());
            prop_assert!(code.starts_with(&prefix) && code.ends_with(&postfix));
            let middle: Vec<char> = code[prefix.len()..code.len() - postfix.len()].chars().collect();
            let shape: Vec<char> = pattern.chars().collect();
            prop_assert_eq!(middle.len(), shape.len());
            for (got, want) in middle.iter().zip(&shape) {
                if *want == '#' {
                    prop_assert!(allowed.contains(got), "{} not in the charset", got);
                } else {
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert!(check_code(&code).is_ok());
        }
    }
}
