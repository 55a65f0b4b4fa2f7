//! Turning what the outbox holds into the email a user (or an admin) gets: a digest, a code a
//! distribution assigned, an admin alert.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::email::Email;
use super::templates::{TemplateError, Templates};
use crate::domain::campaign::{Campaign, Discount};
use crate::domain::digest::DigestRecord;
use crate::domain::notification::Notification;
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

#[derive(Debug, Serialize)]
struct CodeContext<'a> {
    subject: String,
    campaign: &'a str,
    retailer: Option<&'a str>,
    code: &'a str,
    /// What it gives (`10% off`, `5.00 EUR off`, `a balance of 25.00`), if anything.
    offer: Option<String>,
    /// When it stops being valid, in the campaign's timezone (`2026-12-24 23:59`).
    ends: String,
    timezone: String,
    public_url: &'a str,
    /// The one-click unsubscribe link (emails only).
    unsubscribe_url: &'a str,
}

fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, (cents % 100).abs())
}

impl<'a> CodeContext<'a> {
    fn of(campaign: &'a Campaign, code: &'a str, public_url: &'a str) -> Self {
        let offer = match (&campaign.discount, campaign.gift_balance_cents) {
            (Some(Discount::Percent(p)), _) => Some(format!("{p}% off")),
            (Some(Discount::Amount { cents, currency }), _) => {
                Some(format!("{} {currency} off", money(*cents)))
            }
            (None, Some(balance)) => Some(format!("a balance of {}", money(balance))),
            (None, None) => None,
        };
        Self {
            subject: String::new(),
            campaign: &campaign.name,
            retailer: campaign.retailer.as_deref(),
            code,
            offer,
            ends: campaign
                .ends_at
                .with_timezone(&campaign.timezone.0)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            timezone: campaign.timezone.to_string(),
            public_url,
            unsubscribe_url: "",
        }
    }
}

/// The text message carrying a distributed code.
pub fn code_sms(
    templates: &Templates,
    campaign: &Campaign,
    code: &str,
    public_url: &str,
) -> Result<String, TemplateError> {
    let ctx = CodeContext::of(campaign, code, public_url);
    Ok(templates.render("code_sms.txt", &ctx)?.trim().to_owned())
}

/// The email carrying a distributed code to its customer, with the one-click unsubscribe link
/// (`List-Unsubscribe`) that opts them out of such email.
pub fn code_email(
    templates: &Templates,
    campaign: &Campaign,
    code: &str,
    to: &str,
    message_id: String,
    public_url: &str,
    unsubscribe_url: &str,
) -> Result<Email, TemplateError> {
    let mut ctx = CodeContext::of(campaign, code, public_url);
    ctx.unsubscribe_url = unsubscribe_url;
    ctx.subject = templates
        .render("code_subject.txt", &ctx)?
        .trim()
        .to_owned();
    Ok(Email {
        to: to.to_owned(),
        text: templates.render("code.txt", &ctx)?,
        html: templates.render("code.html", &ctx)?,
        subject: ctx.subject,
        message_id,
        unsubscribe_url: Some(unsubscribe_url.to_owned()),
    })
}

#[derive(Debug, Serialize)]
struct AlertContext<'a> {
    kind: &'static str,
    subject: &'a str,
    message: &'a str,
    created_at: String,
    public_url: &'a str,
}

/// The email telling the admins (`to`, comma-separated) about a notification.
pub fn alert_email(
    templates: &Templates,
    n: &Notification,
    to: &str,
    message_id: String,
    public_url: &str,
) -> Result<Email, TemplateError> {
    let ctx = AlertContext {
        kind: n.kind.as_str(),
        subject: &n.subject,
        message: &n.message,
        created_at: n
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        public_url,
    };
    Ok(Email {
        to: to.to_owned(),
        subject: templates
            .render("alert_subject.txt", &ctx)?
            .trim()
            .to_owned(),
        text: templates.render("alert.txt", &ctx)?,
        html: templates.render("alert.html", &ctx)?,
        message_id,
        unsubscribe_url: None,
    })
}

/// The text message carrying the code a provider server gave for a request.
pub fn requested_sms(
    templates: &Templates,
    product: &str,
    code: &str,
) -> Result<String, TemplateError> {
    let ctx = serde_json::json!({"product": product, "code": code});
    Ok(templates
        .render("requested_sms.txt", &ctx)?
        .trim()
        .to_owned())
}

#[derive(Debug, Serialize)]
struct AccountContext<'a> {
    subject: String,
    email: &'a str,
    confirm_url: &'a str,
    /// When the link stops working, UTC (`2026-12-10 09:30`).
    expires: String,
    public_url: &'a str,
}

/// The email with the link confirming `to` for its account, working until `expires_at`.
pub fn confirm_email(
    templates: &Templates,
    to: &str,
    confirm_url: &str,
    expires_at: DateTime<Utc>,
    message_id: String,
    public_url: &str,
) -> Result<Email, TemplateError> {
    account_email(
        templates,
        [
            "confirm_email_subject.txt",
            "confirm_email.txt",
            "confirm_email.html",
        ],
        AccountContext {
            subject: String::new(),
            email: to,
            confirm_url,
            expires: expires_at.format("%Y-%m-%d %H:%M").to_string(),
            public_url,
        },
        message_id,
    )
}

/// The email telling the owner of `to` that someone tried to sign up with it.
pub fn already_registered_email(
    templates: &Templates,
    to: &str,
    message_id: String,
    public_url: &str,
) -> Result<Email, TemplateError> {
    account_email(
        templates,
        [
            "already_registered_subject.txt",
            "already_registered.txt",
            "already_registered.html",
        ],
        AccountContext {
            subject: String::new(),
            email: to,
            confirm_url: "",
            expires: String::new(),
            public_url,
        },
        message_id,
    )
}

/// An account email from its subject, text and HTML templates.
fn account_email(
    templates: &Templates,
    [subject, text, html]: [&'static str; 3],
    mut ctx: AccountContext<'_>,
    message_id: String,
) -> Result<Email, TemplateError> {
    ctx.subject = templates.render(subject, &ctx)?.trim().to_owned();
    Ok(Email {
        to: ctx.email.to_owned(),
        text: templates.render(text, &ctx)?,
        html: templates.render(html, &ctx)?,
        subject: ctx.subject,
        message_id,
        unsubscribe_url: None,
    })
}

/// The text message carrying a phone code: the template and the code, nothing a customer wrote.
pub fn phone_code_sms(
    templates: &Templates,
    code: &str,
    minutes: i64,
) -> Result<String, TemplateError> {
    let ctx = serde_json::json!({"code": code, "minutes": minutes});
    Ok(templates
        .render("phone_code_sms.txt", &ctx)?
        .trim()
        .to_owned())
}
