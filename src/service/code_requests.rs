//! Asking a voucher-provider server for a code: the request is stored pending, then handed to
//! the provider's actor with the queue place reserved for it (a guard: a request that is not
//! handed over gives its place back, whatever returns early).

use super::{Error, Services};
use crate::domain::bounded_text;
use crate::domain::code_request::{CodeRequest, RequestChannel, RequestStatus};
use crate::domain::user::Phone;

/// What a customer asks a provider for.
#[derive(Debug, Clone)]
pub struct Ask {
    pub provider: String,
    pub product: String,
    pub phone: Option<String>,
    pub channel: RequestChannel,
    pub customer: uuid::Uuid,
    /// A manager asks for a customer: the SMS may go to another number.
    pub by_manager: bool,
}

/// Stores a pending request and hands it to its provider: the request as stored. 422 for an
/// unknown provider or a channel the customer cannot be reached by; 503 when the provider's
/// queue is full.
pub async fn ask(svc: &Services, ask: Ask) -> Result<CodeRequest, Error> {
    let providers = &svc.actors.providers;
    let Some(offered) = svc
        .settings
        .providers
        .iter()
        .find(|p| p.name == ask.provider)
    else {
        return Err(Error::invalid(
            "provider",
            format!("no [[providers]] entry is named `{}`", ask.provider),
        ));
    };
    let product = bounded_text("product", &ask.product, CodeRequest::MAX_PRODUCT_LEN)?;
    if !offered.offers(&product) {
        return Err(Error::invalid(
            "product",
            format!("provider `{}` does not offer `{product}`", ask.provider),
        ));
    }
    // A text message or a push carries the product's name to a phone: only a name the operator
    // listed, never words a customer typed ("*" admits any product on the web only).
    if ask.channel != RequestChannel::Web && !offered.lists(&product) {
        return Err(Error::invalid(
            "product",
            format!(
                "by sms or push, ask for one of the products provider `{}` lists by name",
                ask.provider
            ),
        ));
    }
    let customer = ask.customer;
    if ask.channel == RequestChannel::Push {
        let subscribed = svc
            .store
            .run(move |s| s.push_subscriptions().of_user(customer))
            .await?;
        if subscribed.is_empty() {
            return Err(Error::invalid(
                "channel",
                "push needs a push subscription of the customer",
            ));
        }
    }
    let given = ask.phone.as_deref().map(Phone::parse).transpose()?;
    // Only a number proven by a code is the customer's own.
    let own = svc
        .store
        .run(move |s| s.users().get(customer))
        .await?
        .ok_or(Error::NotFound)?
        .verified_phone()
        .cloned();
    let phone = match (ask.channel, given) {
        // A customer's numbers are their own confirmed one: a request is no way to text
        // strangers, nor to file codes under someone else's number.
        (_, Some(p)) if !ask.by_manager && own.as_ref() != Some(&p) => {
            return Err(Error::invalid(
                "phone",
                "give your own confirmed number (confirm it on your account first)",
            ));
        }
        (_, Some(p)) => Some(p.as_str().to_owned()),
        (RequestChannel::Sms, None) => {
            let phone = own.ok_or_else(|| {
                Error::invalid(
                    "phone",
                    "give one, or confirm the customer's number on their account, for sms",
                )
            })?;
            Some(phone.as_str().to_owned())
        }
        (RequestChannel::Web | RequestChannel::Push, None) => None,
    };
    if ask.channel == RequestChannel::Sms && !svc.settings.delivery.sms.enabled() {
        return Err(Error::invalid(
            "channel",
            "sms needs [delivery.sms] url in the configuration",
        ));
    }
    let Some(place) = providers.reserve(&ask.provider) else {
        metrics::counter!("voucherd_code_requests_total", "provider" => ask.provider, "result" => "overloaded").increment(1);
        return Err(Error::Overloaded);
    };
    let now = svc.clock.now();
    let request = CodeRequest {
        v: CodeRequest::VERSION,
        id: crate::domain::v7_at(now),
        provider: ask.provider,
        product,
        customer,
        phone,
        channel: ask.channel,
        status: RequestStatus::Pending,
        code: None,
        error: None,
        accepted: false,
        created_at: now,
        updated_at: now,
        fulfilled_at: None,
    };
    let stored = request.clone();
    let caps = &svc.settings.code_requests;
    let (max_pending, max_per_day) = (
        caps.max_pending_per_customer as usize,
        caps.max_per_customer_per_day as usize,
    );
    // A failed or refused write returns here and drops `place`, which gives it back.
    svc.store
        .write(move |s| {
            s.code_requests()
                .create(&stored, max_pending, max_per_day, now)
        })
        .await?
        .map_err(|capped| Error::TooMany(capped.to_string()))?;
    // Stored first: a request the actor cannot take now is picked up at its next start.
    if !providers.submit(place, request.id) {
        tracing::warn!(request = %request.id, "provider actor busy; the request waits for its restart");
    }
    Ok(request)
}

/// A provider's answer to one of its requests: `Ok(code)` fulfils it, `Err(reason)` fails it,
/// once (a repeat changes nothing): the request as it stands. 404 when the request is not that
/// provider's.
pub async fn settle(
    svc: &Services,
    provider: &str,
    id: uuid::Uuid,
    answer: Result<String, String>,
) -> Result<CodeRequest, Error> {
    let answer = match answer {
        Ok(code) => Ok(bounded_text("code", &code, CodeRequest::MAX_CODE_LEN)?),
        Err(error) => Err(bounded_text("error", &error, 500)?),
    };
    let (now, owner) = (svc.clock.now(), provider.to_owned());
    let settled = svc
        .store
        .write(move |s| {
            match s.code_requests().get(id)? {
                Some(r) if r.provider == owner => {}
                _ => return Err(crate::store::StoreError::NotFound),
            }
            match &answer {
                Ok(code) => s.code_requests().fulfil(id, code, now),
                Err(error) => s.code_requests().fail(id, error, now),
            }
        })
        .await?;
    if let crate::store::code_requests::Settled::Now(r) = &settled {
        let result = if r.status == RequestStatus::Fulfilled {
            "fulfilled"
        } else {
            "failed"
        };
        metrics::counter!("voucherd_code_requests_total", "provider" => provider.to_owned(), "result" => result).increment(1);
        svc.actors.providers.settlements.settled(r.id);
        svc.actors.outbox_wake.notify_one();
    }
    Ok(settled.request().clone())
}
