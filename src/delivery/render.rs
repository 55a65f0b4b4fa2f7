//! Turning a committed digest into the email a user gets.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::email::Email;
use super::templates::{TemplateError, Templates};
use crate::domain::digest::DigestRecord;
use crate::domain::user::{DigestFrequency, User};
use crate::domain::voucher::Voucher;

/// One voucher line of a digest.
#[derive(Debug, Clone, Serialize)]
pub struct VoucherLine {
    pub retailer: String,
    pub title: String,
    pub code: Option<String>,
    /// The end date in the user's timezone (`2026-03-31`).
    pub ends: Option<String>,
    pub url: Option<String>,
}

impl VoucherLine {
    pub fn of(v: &Voucher, user: &User) -> Self {
        Self {
            retailer: v.offer.retailer.clone(),
            title: v.offer.title.clone(),
            code: v.offer.code.clone(),
            ends: v.offer.ends_at.map(|t| local_date(t, user).to_string()),
            url: v.offer.url.clone(),
        }
    }
}

fn local_date(t: DateTime<Utc>, user: &User) -> NaiveDate {
    t.with_timezone(&user.timezone.0).date_naive()
}

#[derive(Debug, Serialize)]
struct DigestContext<'a> {
    subject: String,
    local_date: NaiveDate,
    count: usize,
    more: u64,
    vouchers: &'a [VoucherLine],
    frequency: &'static str,
    hour: u8,
    timezone: String,
    unsubscribe_url: &'a str,
    public_url: &'a str,
}

/// The digest email: subject, text and HTML from the templates, the `Message-ID` from the digest
/// id, and the one-click unsubscribe link.
pub fn digest_email(
    templates: &Templates,
    digest: &DigestRecord,
    user: &User,
    lines: &[VoucherLine],
    unsubscribe_url: &str,
    public_url: &str,
    host: &str,
) -> Result<Email, TemplateError> {
    let mut ctx = DigestContext {
        subject: String::new(),
        local_date: digest.local_date,
        count: lines.len(),
        more: digest.more,
        vouchers: lines,
        frequency: match user.digest_frequency {
            DigestFrequency::Weekly => "weekly",
            _ => "daily",
        },
        hour: user.digest_hour.get(),
        timezone: user.timezone.to_string(),
        unsubscribe_url,
        public_url,
    };
    ctx.subject = templates
        .render("digest_subject.txt", &ctx)?
        .trim()
        .to_owned();
    Ok(Email {
        to: user.email.as_str().to_owned(),
        text: templates.render("digest.txt", &ctx)?,
        html: templates.render("digest.html", &ctx)?,
        subject: ctx.subject,
        message_id: digest.message_id(host),
        unsubscribe_url: Some(unsubscribe_url.to_owned()),
    })
}
