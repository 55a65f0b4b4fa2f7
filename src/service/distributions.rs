//! Distributions: one code of a campaign to each listed customer, or to each follower of a
//! retailer or category, by one channel. Accepted once its recipients are fixed and stored; the
//! campaign's actor then hands out the codes in batches (`actors::campaign::distribute`), so a
//! campaign that ends meanwhile gives no more.

use std::collections::HashSet;

use uuid::Uuid;

use super::{Error, Services};
use crate::domain::campaign::CampaignStatus;
use crate::domain::delivery::Channel;
use crate::domain::digest::Target;
use crate::domain::distribution::{Audience, Distribution, Progress};

/// Customers one request may list (a thousand ids fit the default body limit; larger audiences
/// are `subscribers_of`, or several distributions).
pub const MAX_CUSTOMERS: usize = 1_000;

/// Who is to get a code: exactly one of the two.
#[derive(Debug, Clone)]
pub enum Recipients {
    Customers(Vec<Uuid>),
    /// Customers named by their email addresses (each must be a user's).
    Emails(Vec<String>),
    SubscribersOf {
        retailer: Option<String>,
        category: Option<String>,
    },
}

/// A distribution as asked for.
#[derive(Debug, Clone)]
pub struct NewDistribution {
    pub recipients: Recipients,
    pub channel: Channel,
    /// The `[[webhooks]]` entry's name, with `Channel::Webhook`.
    pub webhook: Option<String>,
    /// The user or API key that asked.
    pub created_by: Uuid,
}

/// Stores a distribution with its recipients fixed now and starts it: the distribution and its
/// progress so far. 422 for an unknown customer or webhook, a channel not configured, or a
/// campaign that is not active; 404 for an unknown campaign.
pub async fn start(
    svc: &Services,
    campaign: Uuid,
    new: NewDistribution,
) -> Result<(Distribution, Progress), Error> {
    let campaign = svc
        .store
        .campaigns()
        .shared(campaign)
        .ok_or(Error::NotFound)?;
    let webhook = webhook(svc, new.channel, new.webhook)?;
    let (audience, recipients) = match new.recipients {
        Recipients::Customers(customers) => (Audience::Customers, customers_of(svc, customers)?),
        Recipients::Emails(emails) => (Audience::Customers, customers_by_email(svc, emails)?),
        Recipients::SubscribersOf { retailer, category } => {
            let target = Target::parse(retailer.as_deref(), category.as_deref())?;
            let followers = followers(svc, &target)?;
            (Audience::SubscribersOf(target), followers)
        }
    };
    if new.channel == Channel::Sms && !svc.settings.delivery.sms.enabled() {
        return Err(Error::invalid(
            "channel",
            "sms needs [delivery.sms] url in the configuration",
        ));
    }
    if campaign.promotion.code_mode == crate::domain::promotion::CodeMode::Shared {
        return Err(Error::Conflict(
            "a shared code is not handed out one per customer: send the code itself".into(),
        ));
    }
    let now = svc.clock.now();
    match campaign.status(svc.store.codes().counts(campaign.id).total, now) {
        CampaignStatus::Active => {}
        CampaignStatus::Ended => return Err(Error::NotActive("the campaign has ended".into())),
        CampaignStatus::Paused => return Err(Error::NotActive("the campaign is paused".into())),
        _ => return Err(Error::NotActive("the campaign has not started".into())),
    }
    let mut progress = Progress::default();
    let (recipients, unreachable) = reachable(svc, new.channel, recipients).await?;
    progress.skipped_unreachable = unreachable;
    let d = Distribution {
        v: Distribution::VERSION,
        id: crate::domain::v7_at(now),
        campaign_id: campaign.id,
        channel: new.channel,
        webhook,
        audience,
        recipients,
        created_by: new.created_by,
        created_at: now,
    };
    let stored = d.clone();
    let progress = svc
        .store
        .write(move |s| s.distributions().create(&stored, progress))
        .await?;
    svc.actors
        .campaigns
        .distribute(d.clone(), progress.clone(), svc.actors.outbox_wake.clone());
    Ok((d, progress))
}

/// The webhook a distribution posts to: a configured name, with the webhook channel only.
fn webhook(
    svc: &Services,
    channel: Channel,
    name: Option<String>,
) -> Result<Option<String>, Error> {
    match (channel, name) {
        (Channel::Webhook, Some(name)) => {
            if !svc.settings.webhooks.iter().any(|w| w.name == name) {
                return Err(Error::invalid(
                    "webhook",
                    format!("no [[webhooks]] entry is named `{name}`"),
                ));
            }
            Ok(Some(name))
        }
        (Channel::Webhook, None) => Err(Error::invalid(
            "webhook",
            "name the [[webhooks]] entry for channel `webhook`",
        )),
        (_, Some(_)) => Err(Error::invalid("webhook", "only with channel `webhook`")),
        (_, None) => Ok(None),
    }
}

/// The listed customers, each once; every one must exist.
fn customers_of(svc: &Services, customers: Vec<Uuid>) -> Result<Vec<Uuid>, Error> {
    if customers.is_empty() || customers.len() > MAX_CUSTOMERS {
        return Err(Error::invalid(
            "customers",
            format!("give 1 to {MAX_CUSTOMERS} user ids"),
        ));
    }
    let mut seen = HashSet::new();
    let customers: Vec<Uuid> = customers.into_iter().filter(|c| seen.insert(*c)).collect();
    let unknown: Vec<String> = customers
        .iter()
        .filter(|c| svc.store.users().role(**c).is_none())
        .take(20)
        .map(Uuid::to_string)
        .collect();
    if !unknown.is_empty() {
        return Err(Error::invalid(
            "customers",
            format!("no such user: {}", unknown.join(", ")),
        ));
    }
    Ok(customers)
}

/// The users with these email addresses (case-blind; repeats count once), from memory: 422
/// naming the addresses no user has.
fn customers_by_email(svc: &Services, emails: Vec<String>) -> Result<Vec<Uuid>, Error> {
    if emails.is_empty() || emails.len() > MAX_CUSTOMERS {
        return Err(Error::invalid(
            "emails",
            format!("give 1 to {MAX_CUSTOMERS} email addresses"),
        ));
    }
    let users = svc.store.users();
    let fold = svc.settings.accounts.fold_plus_tags;
    let mut unknown = Vec::new();
    let mut ids = Vec::with_capacity(emails.len());
    for email in &emails {
        // The account of that address, or of its person (case and `+tag` folded).
        let owner = crate::domain::user::Email::parse(email)
            .ok()
            .and_then(|e| users.address_owner(&e, fold, Uuid::nil()));
        match owner {
            Some(id) => ids.push(id),
            None if unknown.len() < 20 => unknown.push(email.as_str()),
            None => {}
        }
    }
    if !unknown.is_empty() {
        return Err(Error::invalid(
            "emails",
            format!("no user has the address: {}", unknown.join(", ")),
        ));
    }
    customers_of(svc, ids)
}

/// Everyone following `target` now, from memory.
fn followers(svc: &Services, target: &Target) -> Result<Vec<Uuid>, Error> {
    let subs = svc.store.subscriptions();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = subs.subscribers(target, after, 10_000)?;
        let Some(last) = page.last().copied() else {
            break;
        };
        all.extend(page);
        if all.len() > Distribution::MAX_RECIPIENTS {
            return Err(Error::invalid(
                "subscribers_of",
                format!(
                    "more than {} subscribers; list customers instead",
                    Distribution::MAX_RECIPIENTS
                ),
            ));
        }
        after = Some(last);
    }
    Ok(all)
}

/// The recipients a channel can reach, and how many it cannot: with `[accounts] verify_email`
/// only people whose address is confirmed (an address someone else typed is not the person: a
/// code must not land in an impostor's wallet); a text message needs a confirmed number, email
/// consent to marketing email, a push a subscription.
async fn reachable(
    svc: &Services,
    channel: Channel,
    recipients: Vec<Uuid>,
) -> Result<(Vec<Uuid>, u32), Error> {
    let confirmed_only = svc.settings.accounts.verify_email;
    Ok(svc
        .store
        .run(move |s| {
            let mut with = Vec::with_capacity(recipients.len());
            let mut without = 0u32;
            for id in recipients {
                if confirmed_only && s.users().verified(id) != Some(true) {
                    without += 1;
                    continue;
                }
                let reachable = match channel {
                    Channel::Sms => s
                        .users()
                        .get(id)?
                        .is_some_and(|u| u.verified_phone().is_some()),
                    // Marketing email goes only to those who agreed to it.
                    Channel::Email => s
                        .users()
                        .get(id)?
                        .is_some_and(|u| u.takes_marketing_email()),
                    Channel::Push => !s.push_subscriptions().of_user(id)?.is_empty(),
                    Channel::Webhook => true,
                };
                if reachable {
                    with.push(id);
                } else {
                    without += 1;
                }
            }
            Ok((with, without))
        })
        .await?)
}
