//! Plain types and rules, no I/O: parse-don't-validate newtypes, users and roles, auth policy.
//! Everything here is unit- and property-testable without a store or a server.

pub mod auth;
pub mod campaign;
pub mod checkout;
pub mod code_request;
pub mod delivery;
pub mod digest;
pub mod distribution;
pub mod network;
pub mod notification;
pub mod promotion;
pub mod push;
pub mod report;
pub mod schedule;
pub mod times;
pub mod user;
pub mod voucher;

/// A UUIDv7 carrying the instant `t` (from the injectable clock), so ids order like the times
/// they record — within one millisecond too: an id made in the same millisecond as the last one
/// follows it (its random part is the last one's plus one), so two subscriptions made in a row
/// list in the order they were made. A clock that moves back is not clamped: the id carries the
/// time it was given.
pub fn v7_at(t: chrono::DateTime<chrono::Utc>) -> uuid::Uuid {
    /// The last id made in each of the milliseconds asked for most recently (several: callers
    /// with different clocks — tests with manual clocks — interleave), with when each was used.
    static LAST: parking_lot::Mutex<([(u128, u64); 16], u64)> =
        parking_lot::const_mutex(([(0, 0); 16], 0));
    let secs = u64::try_from(t.timestamp()).unwrap_or(0);
    let fresh = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        secs,
        t.timestamp_subsec_nanos(),
    ))
    .as_u128();
    let mut guard = LAST.lock();
    let (slots, tick) = &mut *guard;
    *tick += 1;
    // The top 48 bits are the millisecond.
    let slot = match slots.iter().position(|(l, _)| *l >> 80 == fresh >> 80) {
        Some(i) => i,
        None => {
            // The least recently used millisecond gives way.
            let i = (0..slots.len()).min_by_key(|&i| slots[i].1).unwrap_or(0);
            slots[i].0 = 0;
            i
        }
    };
    let (last, used) = &mut slots[slot];
    let id = if *last != 0 && fresh <= *last {
        *last + 1
    } else {
        fresh
    };
    *last = id;
    *used = *tick;
    uuid::Uuid::from_u128(id)
}

/// Characters that show nothing or change how the text around them reads: zero-width spaces and
/// joiners, bidi marks, embeddings, overrides and isolates, the BOM, the soft hyphen, the
/// combining grapheme joiner, Hangul fillers, Mongolian and other variation selectors,
/// interlinear annotation marks and tag characters.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        // Format characters (Unicode's general category Cf) …
        '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
        | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}'
        // … and the other default-ignorable or blank-looking ones: the combining grapheme
        // joiner, Hangul and Khmer fillers, variation selectors, the braille blank.
        | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180D}' | '\u{180F}' | '\u{2800}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FFA0}')
}

/// The form two names are compared in (SKUs, retailers, categories of an order and of a
/// campaign's rules): trimmed, compatibility-normalised (NFKC: full-width letters become
/// ASCII), lower-cased, and stripped of combining marks (`İ` lower-cases to `i` plus a dot, so
/// `GİFTCARD`, `ＧＩＦＴＣＡＲＤ` and `giftcard ` are one name). ASCII text takes a fast path.
pub fn match_key(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    use unicode_normalization::char::is_combining_mark;
    let s = s.trim();
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let lower: String = s.nfkc().flat_map(char::to_lowercase).collect();
    lower
        .nfkd()
        .filter(|c| !is_combining_mark(*c) && !is_invisible(*c))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Whether `a` and `b` name the same thing once both are in [`match_key`] form; `b` is already
/// in it (a key computed once), so ASCII `a` costs no allocation.
pub fn matches_key(a: &str, b_key: &str) -> bool {
    let t = a.trim();
    if t.is_ascii() {
        return t.eq_ignore_ascii_case(b_key);
    }
    match_key(t) == b_key
}

/// `cell` as a spreadsheet will show it rather than run it: a leading `'` before a cell that
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return (OWASP, CSV injection).
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cells_a_spreadsheet_would_run_are_neutralised() {
        for (cell, shown) in [
            ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
            ("+cmd|x", "'+cmd|x"),
            ("-2+3", "'-2+3"),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("\tX", "'\tX"),
            ("SALE-1=2", "SALE-1=2"),
            ("", ""),
        ] {
            assert_eq!(super::spreadsheet_safe(cell), shown);
        }
    }

    #[test]
    fn ids_made_in_one_millisecond_follow_each_other_and_carry_the_time_given() {
        let t: chrono::DateTime<chrono::Utc> = "2026-06-01T05:00:00.123Z".parse().unwrap();
        let ids: Vec<uuid::Uuid> = (0..1000).map(|_| super::v7_at(t)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        // An earlier time is not clamped to the later one.
        let earlier = super::v7_at(t - chrono::Duration::days(1));
        assert!(earlier < ids[0]);
        let ms = |id: uuid::Uuid| id.as_u128() >> 80;
        assert_eq!(ms(ids[999]), t.timestamp_millis() as u128);
    }

    #[test]
    fn names_match_whatever_their_width_case_or_marks() {
        for (a, b) in [
            ("GIFTCARD", "giftcard"),
            ("GIFTCARD ", "giftcard"),
            ("  GiftCard", "giftcard"),
            ("ＧＩＦＴＣＡＲＤ", "giftcard"),
            ("GİFTCARD", "giftcard"),
            ("Crème", "creme"),
            ("ﬁle", "file"),
        ] {
            assert_eq!(super::match_key(a), b, "{a:?}");
            assert!(super::matches_key(a, &super::match_key(b)), "{a:?}");
        }
        assert!(!super::matches_key("GIFTCARDS", "giftcard"));
    }

    proptest::proptest! {
        /// A key is its own key (folding twice changes nothing), and text matches its own key.
        #[test]
        fn a_key_is_stable(s in "\\PC{0,20}") {
            let k = super::match_key(&s);
            proptest::prop_assert_eq!(super::match_key(&k), k.clone());
            proptest::prop_assert!(super::matches_key(&s, &k));
        }
    }

    #[test]
    fn bounded_text_trims_spaces_but_refuses_control_characters_anywhere() {
        assert_eq!(super::bounded_text("f", "  shop  ", 10).unwrap(), "shop");
        for bad in [
            "shop\u{b}",
            "\nshop",
            "sh\u{0}op",
            "   ",
            "shop\u{202E}gnp.exe",
            "sh\u{200B}op",
            "\u{FEFF}shop",
            "shop\u{00AD}",
            "sh\u{2063}op",
            "shop\u{E0041}",
            "shop\u{1BCA0}",
            "shop\u{2800}",
            "\u{0600}shop",
            "shop\u{13430}",
        ] {
            assert!(super::bounded_text("f", bad, 10).is_err(), "{bad:?}");
        }
    }
}

/// A rule broken by input: which field, and why. Shown to clients as 422 `validation_failed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Rejects blank strings, strings longer than `max` characters (as sent) or holding control
/// characters; returns the text trimmed.
pub fn bounded_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    // As sent: a control character at either end is refused too, not trimmed away.
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    // Invisible and direction-changing characters make a name read as another (`\u{202E}`
    // reverses what follows; zero-width ones hide differences).
    if value.chars().any(is_invisible) {
        return Err(ValidationError::new(
            field,
            "must not contain invisible or direction-changing characters",
        ));
    }
    Ok(trimmed.to_owned())
}
