//! Accounts: registration (with its address confirmed by a signed link), signing in, changes to
//! a user (settings, role, password; a new address confirmed before it is used), a phone number
//! proven by a one-time SMS code, and erasure. A user's record and their digest schedule change
//! in one writer command; the shard owning their timezone is told. Erasure goes through the
//! user's SubscriptionManager, the owner of their subscriptions, which erases everything naming
//! them and stops.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{Error, Services};
use crate::actors::subscriptions::EraseUser;
use crate::domain::auth::{Principal, TokenKind, TokenRecord, new_token, token_hash};
use crate::domain::delivery::{AccountMail, Channel, MessagePayload, MessageRecord};
use crate::domain::user::{
    DigestFrequency, DigestHour, Email, Password, Phone, PhoneChallenge, PhoneRefusal, Role,
    Timezone, User, UserChanges,
};
use crate::security::same_secret;
use crate::store::{Store, StoreError};

/// A sign-up as asked for.
#[derive(Debug)]
pub struct SignUp {
    pub email: Email,
    pub password: Password,
    pub phone: Option<Phone>,
    pub timezone: Timezone,
    pub digest_hour: DigestHour,
    pub digest_frequency: DigestFrequency,
    /// Codes from campaigns by email: only when they ticked it (never assumed).
    pub marketing_emails: bool,
}

/// What a registration did.
#[derive(Debug)]
pub enum Registered {
    /// The account, made now: by a manager, or without address confirmation.
    Created(Box<User>),
    /// A confirmation link went to the address if it can be used, or its owner was told that
    /// someone tried to sign up with it: the one signing up learns nothing either way.
    LinkSent,
}

/// Who registers: a visitor for themselves, or a manager making a customer's account (taken as
/// confirmed: the manager vouches for the address and number).
#[derive(Debug, Clone, Copy)]
pub struct Registering {
    pub by_manager: bool,
    /// Whether an account email may go to this address now (the caller's rate limit).
    pub may_mail: bool,
}

/// The message carrying a link that confirms `email` for `user`.
fn confirmation(svc: &Services, user: Uuid, email: &Email, now: DateTime<Utc>) -> MessageRecord {
    link_for(
        user,
        email,
        now,
        i64::from(svc.settings.accounts.verification_link_hours),
    )
}

/// The message carrying a link that confirms `email` for `user`, working `hours`.
fn link_for(user: Uuid, email: &Email, now: DateTime<Utc>, hours: i64) -> MessageRecord {
    MessageRecord::new(
        Channel::Email,
        MessagePayload::Account {
            user_id: user,
            mail: AccountMail::ConfirmEmail {
                email: email.as_str().to_owned(),
                expires_at: now + Duration::hours(hours),
            },
        },
        None,
        now,
    )
}

/// Registers a customer. A visitor's sign-up, with `[accounts] verify_email`, makes no account
/// yet: it waits ([`crate::store::signups`]) for the link mailed to the address to be opened with
/// its password (3 keys: the sign-up, the message and its outbox marker; a person's fourth
/// waiting sign-up ends the oldest, 1 key + its link's 2). An address that has an account (or
/// whose person has one: `+tags` folded) keeps nothing, and its owner gets a notice (2 keys);
/// past the address's allowance of account emails nothing is kept or sent. All answer
/// [`Registered::LinkSent`] after the same work: the answer tells nobody whether an address
/// exists. A manager's, or any without confirmation, is made at once, confirmed or not as said
/// (1 key), and a taken address is 409.
pub async fn register(
    svc: &Services,
    sign_up: SignUp,
    registering: Registering,
) -> Result<Registered, Error> {
    let visitor = !registering.by_manager && svc.settings.accounts.verify_email;
    // Every address answers the same: the bound on waiting sign-ups is the server's, not the
    // address's (and is checked before any hashing).
    if visitor
        && svc.store.signups().waiting() >= svc.settings.accounts.max_waiting_signups as usize
    {
        return Err(Error::Overloaded);
    }
    let password_hash = svc.passwords.hash(sign_up.password).await?;
    let now = svc.clock.now();
    let vouched = registering.by_manager.then_some(now);
    let user = User {
        v: User::VERSION,
        id: crate::domain::v7_at(now),
        email: sign_up.email,
        password_hash,
        phone_verified_at: sign_up.phone.as_ref().and(vouched),
        phone: sign_up.phone,
        timezone: sign_up.timezone,
        digest_hour: sign_up.digest_hour,
        digest_frequency: sign_up.digest_frequency,
        role: Role::Customer,
        created_at: now,
        updated_at: now,
        marketing_opt_out_at: (!sign_up.marketing_emails).then_some(now),
        email_verified_at: vouched,
        pending_email: None,
        phone_challenge: None,
    };
    let weekday = svc.settings.digest.weekly_day;
    let fold = svc.settings.accounts.fold_plus_tags;
    let stored = user.clone();
    if registering.by_manager || !svc.settings.accounts.verify_email {
        let user = svc
            .store
            .write(move |s| {
                let mut stored = stored;
                if !vouchable(s, stored.id, stored.phone.as_ref()) {
                    stored.phone_verified_at = None;
                }
                s.users().register(&stored, fold)?;
                s.digests().schedule(&stored, weekday, now)?;
                Ok(stored)
            })
            .await?;
        svc.actors.schedule_changed(user.timezone.0);
        return Ok(Registered::Created(Box::new(user)));
    }
    let may_mail = registering.may_mail;
    let hours = i64::from(svc.settings.accounts.verification_link_hours);
    let signup = crate::store::signups::SignUp {
        v: crate::store::signups::SignUp::VERSION,
        person: stored.email.person(fold),
        expires_at: now + Duration::hours(hours),
        user: stored,
    };
    let ended = svc
        .store
        .write(move |s| {
            let email = &signup.user.email;
            if let Some(owner) = s.users().address_owner(email, fold, signup.user.id) {
                if may_mail {
                    let notice = MessageRecord::new(
                        Channel::Email,
                        MessagePayload::Account {
                            user_id: owner,
                            mail: AccountMail::AlreadyRegistered,
                        },
                        None,
                        now,
                    );
                    s.messages().enqueue(&[notice])?;
                }
                return Ok(Vec::new());
            }
            // Past the address's allowance of account emails nothing is kept either: a sign-up
            // nobody can confirm would only wait to expire.
            if !may_mail {
                return Ok(Vec::new());
            }
            let mut erased = Vec::new();
            for id in s.signups().add(&signup)? {
                erased.extend(s.messages().erase_owner(id)?);
            }
            let link = link_for(signup.user.id, email, now, hours);
            s.messages().enqueue(&[link])?;
            Ok(erased)
        })
        .await?;
    svc.actors.outbox_wake.notify_one();
    erase_mail_files(svc, ended).await;
    Ok(Registered::LinkSent)
}

/// What a confirmation link that came too late answers (409).
pub const LINK_EXPIRED: &str =
    "this link has expired: sign up again, or sign in and ask for a new one";
/// What a link for an address another account confirmed meanwhile answers (409).
pub const ADDRESS_TAKEN: &str = "this address now belongs to another account";

/// What a confirmation link is for.
#[derive(Debug, Clone)]
pub enum LinkTarget {
    /// An account's own address (unconfirmed), or the one it asked to change to.
    Account(Box<User>, Email),
    /// A sign-up waiting for its address: the account it makes.
    SignUp(Box<crate::store::signups::SignUp>),
}

impl LinkTarget {
    /// The address the link confirms.
    pub fn address(&self) -> &Email {
        match self {
            LinkTarget::Account(_, a) => a,
            LinkTarget::SignUp(s) => &s.user.email,
        }
    }

    /// The account whose password the link wants, as sign-ins name it (its tries count as
    /// sign-ins of that account).
    pub fn account(&self) -> String {
        match self {
            LinkTarget::Account(u, _) => u.email.folded(),
            LinkTarget::SignUp(s) => s.user.email.folded(),
        }
    }

    /// Whether the link did its work already: the address is the account's, confirmed.
    pub fn is_done(&self) -> bool {
        matches!(self, LinkTarget::Account(u, a) if u.email == *a && u.email_verified())
    }

    fn password_hash(&self) -> &str {
        match self {
            LinkTarget::Account(u, _) => &u.password_hash,
            LinkTarget::SignUp(s) => &s.user.password_hash,
        }
    }
}

/// What a confirmation link is for: a waiting sign-up, or an account's address (its own, or the
/// one it asked to change to). 404 for a link that is altered, for another address, a gone user
/// or a sign-up that ended (confirmed, expired, or superseded by newer ones).
pub async fn link_target(svc: &Services, token: &str) -> Result<LinkTarget, Error> {
    let (id, _) = crate::security::LinkSigner::read_confirm_token(token).ok_or(Error::NotFound)?;
    let (user, signup) = svc
        .store
        .run(move |s| Ok((s.users().get(id)?, s.signups().get(id)?)))
        .await?;
    let genuine = |a: &Email| svc.signer.confirms(token, id, a.as_str());
    if let Some(user) = user {
        let address = [user.pending_email.as_ref(), Some(&user.email)]
            .into_iter()
            .flatten()
            .find(|a| genuine(a))
            .cloned()
            .ok_or(Error::NotFound)?;
        return Ok(LinkTarget::Account(Box::new(user), address));
    }
    match signup {
        Some(signup) if genuine(&signup.user.email) => Ok(LinkTarget::SignUp(Box::new(signup))),
        _ => Err(Error::NotFound),
    }
}

/// Confirms the address a link was sent to, given what it is for ([`link_target`]) and the
/// password chosen at sign-up: the link proves the mailbox, the password proves who signed up,
/// so someone who typed another's address cannot have it confirmed by its owner's click. A
/// sign-up becomes its account, confirmed (the person's other waiting sign-ups end); an
/// account's own address is confirmed, or the one it asked for becomes its address. 409 for an
/// expired link (checked first: an expired link tells nothing of the password) or an address
/// another account confirmed meanwhile; 401 for a wrong password; 404 when the sign-up ended or
/// the account changed its password meanwhile. Keys: a sign-up 2 (the user, the sign-up) + 1 for
/// each other sign-up of the person (+ 2 for its link); an account 1.
pub async fn confirm_email(
    svc: &Services,
    token: &str,
    target: LinkTarget,
    password: String,
) -> Result<User, Error> {
    let (id, expires) =
        crate::security::LinkSigner::read_confirm_token(token).ok_or(Error::NotFound)?;
    let now = svc.clock.now();
    if now.timestamp() > expires {
        return Err(Error::Conflict(LINK_EXPIRED.into()));
    }
    let hash = target.password_hash().to_owned();
    if password.chars().count() > 512 || !svc.passwords.verify(password, Some(hash.clone())).await?
    {
        return Err(Error::BadCredentials);
    }
    let fold = svc.settings.accounts.fold_plus_tags;
    let weekday = svc.settings.digest.weekly_day;
    let address = target.address().clone();
    let made = matches!(target, LinkTarget::SignUp(_));
    let user = svc
        .store
        .write(move |s| {
            let users = s.users();
            if made {
                let signups = s.signups();
                let Some(signup) = signups.get(id)? else {
                    // Confirmed a moment ago by the same link (a double click, a retry): the
                    // same answer.
                    return match users.get(id)? {
                        Some(user) if user.password_hash == hash => Ok((user, Vec::new())),
                        _ => Err(StoreError::NotFound),
                    };
                };
                if signup.user.password_hash != hash {
                    return Err(StoreError::NotFound);
                }
                if users.address_taken(&signup.user.email, fold, id) {
                    return Err(StoreError::Conflict(ADDRESS_TAKEN));
                }
                let user = User {
                    email_verified_at: Some(now),
                    updated_at: now,
                    ..signup.user.clone()
                };
                users.register(&user, fold)?;
                s.digests().schedule(&user, weekday, now)?;
                // The person's other sign-ups are moot: their links stop working.
                let mut erased = Vec::new();
                for other in signups.remove_person(&signup.person)? {
                    if other != id {
                        erased.extend(s.messages().erase_owner(other)?);
                    }
                }
                return Ok((user, erased));
            }
            let user = users.get(id)?.ok_or(StoreError::NotFound)?;
            // The password checked is still the account's.
            if user.password_hash != hash {
                return Err(StoreError::NotFound);
            }
            let changes = if user.pending_email.as_ref() == Some(&address) {
                if users.address_taken(&address, fold, id) {
                    return Err(StoreError::Conflict(ADDRESS_TAKEN));
                }
                UserChanges {
                    email: Some(address),
                    email_verified_at: Some(Some(now)),
                    pending_email: Some(None),
                    ..UserChanges::default()
                }
            } else if user.email == address && !user.email_verified() {
                UserChanges {
                    email_verified_at: Some(Some(now)),
                    ..UserChanges::default()
                }
            } else if user.email == address {
                return Ok((user, Vec::new()));
            } else {
                // The address asked for changed meanwhile: this link is for none of them.
                return Err(StoreError::NotFound);
            };
            Ok((users.update(id, &changes, now)?, Vec::new()))
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => Error::NotFound,
            StoreError::Conflict(why) => Error::Conflict(why.into()),
            e => Error::Store(e),
        })?;
    let (user, erased) = user;
    erase_mail_files(svc, erased).await;
    if made {
        svc.actors.schedule_changed(user.timezone.0);
        tracing::info!(user = %user.id, "signed up: address confirmed");
    } else {
        tracing::info!(user = %user.id, "email address confirmed");
    }
    Ok(user)
}

/// Sends a new confirmation link (self or admin): to the address the account asked to change
/// to, else to its own while unconfirmed; 409 when there is nothing to confirm, 429 past the
/// recipient's allowance. 2 keys.
pub async fn send_confirmation(svc: &Services, id: Uuid, may_mail: bool) -> Result<(), Error> {
    let user = read(&svc.store, id).await?;
    let address = match (&user.pending_email, user.email_verified()) {
        (Some(p), _) => p.clone(),
        (None, false) => user.email.clone(),
        (None, true) => return Err(Error::Conflict("the address is confirmed already".into())),
    };
    if !may_mail {
        return Err(Error::TooMany(
            "a link went to this address lately: look for it, or try again in an hour".into(),
        ));
    }
    let link = confirmation(svc, id, &address, svc.clock.now());
    svc.store
        .write(move |s| s.messages().enqueue(&[link]))
        .await?;
    svc.actors.outbox_wake.notify_one();
    Ok(())
}

/// A new session for the holder of `email` and `password`: the token and when it expires.
/// An unknown email is checked against a decoy hash, the same way as a wrong password (401 for
/// both, after the same work). A user holding `[accounts] max_sessions_per_user` sessions loses
/// the oldest. 1 key, plus one per session ended.
pub async fn sign_in(
    svc: &Services,
    email: String,
    password: String,
) -> Result<(String, DateTime<Utc>), Error> {
    let user = svc.store.run(move |s| s.users().by_email(&email)).await?;
    let ok = svc
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let user = user.filter(|_| ok).ok_or(Error::BadCredentials)?;
    let now = svc.clock.now();
    let expires_at = now + Duration::hours(i64::from(svc.settings.auth.token_ttl_hours));
    let token = new_token();
    let record = TokenRecord {
        v: TokenRecord::VERSION,
        id: crate::domain::v7_at(now),
        kind: TokenKind::Session,
        user_id: Some(user.id),
        role: None,
        name: None,
        created_at: now,
        expires_at: Some(expires_at),
        created_by: None,
    };
    let hash = token_hash(&token);
    let max = svc.settings.accounts.max_sessions_per_user as usize;
    svc.store
        .write(move |s| {
            s.tokens().insert(&hash, &record)?;
            s.tokens().keep_newest_sessions(user.id, max)?;
            Ok(())
        })
        .await?;
    Ok((token, expires_at))
}

/// What a change to a user does to the user's tokens (in the same write).
#[derive(Debug, Clone, Copy)]
pub enum TokensAfter {
    Keep,
    /// A password change: every token of the user but this one (the session that changed it).
    RevokeAllBut(Option<[u8; 32]>),
}

/// A change asked by `who` (self or an admin): an admin cannot demote themselves (409). A new
/// address asked by the user themselves, with `[accounts] verify_email`, waits for its owner:
/// it becomes `pending_email` and a link goes to it (the account's address stays until the link
/// is opened; the answer is the same whether or not the address has an account). An admin's
/// change to another user's address or number is taken as confirmed.
pub async fn update(
    svc: &Services,
    who: &Principal,
    id: Uuid,
    mut changes: UserChanges,
    tokens: TokensAfter,
    may_mail: bool,
) -> Result<User, Error> {
    if changes.role.is_some_and(|r| r != Role::Admin) && who.user_id == Some(id) {
        return Err(Error::Conflict("an admin cannot demote themselves".into()));
    }
    let now = svc.clock.now();
    let vouched = who.role.includes(Role::Admin) && who.user_id != Some(id);
    let mut link = None;
    if let Some(address) = changes.email.take() {
        let current = read(&svc.store, id).await?;
        if address.folded() == current.email.folded() {
            // The same address (its case aside): nothing to confirm.
            changes.email = Some(address);
        } else if vouched {
            changes.email = Some(address);
            changes.email_verified_at = Some(Some(now));
        } else if svc.settings.accounts.verify_email {
            if !may_mail {
                return Err(Error::TooMany(
                    "a link went to that address lately: try again in an hour".into(),
                ));
            }
            link = Some(confirmation(svc, id, &address, now));
            changes.pending_email = Some(Some(address));
        } else {
            changes.email = Some(address);
        }
    }
    if vouched && matches!(changes.phone, Some(Some(_))) {
        changes.phone_verified_at = Some(Some(now));
    }
    let user = change_with(svc, id, changes, tokens, link).await?;
    Ok(user)
}

/// Applies a change to a user and moves their digest schedule with it (timezone, hour,
/// frequency), in one durable write.
pub async fn change(
    svc: &Services,
    id: Uuid,
    changes: UserChanges,
    tokens: TokensAfter,
) -> Result<User, Error> {
    change_with(svc, id, changes, tokens, None).await
}

async fn change_with(
    svc: &Services,
    id: Uuid,
    changes: UserChanges,
    tokens: TokensAfter,
    link: Option<MessageRecord>,
) -> Result<User, Error> {
    let now = svc.clock.now();
    let weekday = svc.settings.digest.weekly_day;
    let fold = svc.settings.accounts.fold_plus_tags;
    let mailed = link.is_some();
    let user = svc
        .store
        .write(move |s| {
            if let Some(address) = &changes.email
                && s.users().address_taken(address, fold, id)
            {
                return Err(StoreError::Conflict("a user with this email exists"));
            }
            let mut changes = changes;
            if let Some(Some(phone)) = &changes.phone
                && !vouchable(s, id, Some(phone))
            {
                changes.phone_verified_at = Some(None);
            }
            let user = s.users().update(id, &changes, now)?;
            s.digests().schedule(&user, weekday, now)?;
            if let TokensAfter::RevokeAllBut(keep) = tokens {
                s.tokens().revoke_user_except(id, keep.as_ref())?;
            }
            if let Some(link) = &link {
                s.messages().enqueue(std::slice::from_ref(link))?;
            }
            Ok(user)
        })
        .await?;
    svc.actors.schedule_changed(user.timezone.0);
    if mailed {
        svc.actors.outbox_wake.notify_one();
    }
    Ok(user)
}

/// Whether a manager may vouch for `phone` on `user`: not when another account proved it (only
/// a code sent to the number moves it; vouched for anyway it stays unconfirmed here, and the
/// customer proves it with a code). Memory only; writer (the answer holds for the write).
fn vouchable(s: &Store, user: Uuid, phone: Option<&Phone>) -> bool {
    phone.is_none_or(|p| {
        s.users()
            .by_phone(p)
            .ok()
            .flatten()
            .is_none_or(|o| o == user)
    })
}

/// Sends a one-time code by SMS to prove `phone` (or the number on the account) is the user's
/// (self or admin): the challenge as stored. 422 without an SMS gateway or a number; 409 for a
/// number confirmed already; 429 past `[accounts] phone_codes_per_day`. The code is worked out
/// from the server's secret, never stored; the text is a template with nothing a customer
/// wrote. 3 keys: the user (the challenge), the message and its outbox marker.
pub async fn send_phone_code(
    svc: &Services,
    id: Uuid,
    phone: Option<Phone>,
) -> Result<PhoneChallenge, Error> {
    if !svc.settings.delivery.sms.enabled() {
        return Err(Error::invalid(
            "phone",
            "confirming a number needs [delivery.sms] url in the configuration",
        ));
    }
    let now = svc.clock.now();
    let a = &svc.settings.accounts;
    let confirmed_only = a.verify_email;
    let (ttl, tries, per_day) = (
        Duration::seconds(a.phone_code_ttl_s as i64),
        a.phone_code_tries,
        a.phone_codes_per_day,
    );
    let challenge = svc
        .store
        .write(move |s| {
            let user = s.users().get(id)?.ok_or(StoreError::NotFound)?;
            // Only a confirmed person proves numbers: every code is an SMS someone pays for and
            // someone receives.
            if confirmed_only && !user.email_verified() {
                return Ok(Err(Error::EmailUnverified));
            }
            let Some(phone) = phone.or_else(|| user.phone.clone()) else {
                return Ok(Err(Error::invalid(
                    "phone",
                    "give the number to confirm (E.164, e.g. +4915112345678)",
                )));
            };
            if user.verified_phone() == Some(&phone) {
                return Ok(Err(Error::Conflict(
                    "this number is confirmed already".into(),
                )));
            }
            let challenge = match PhoneChallenge::start(
                user.phone_challenge.as_ref(),
                phone,
                crate::domain::v7_at(now),
                now,
                ttl,
                tries,
                per_day,
            ) {
                Ok(c) => c,
                Err(e) => return Ok(Err(Error::TooMany(e.to_string()))),
            };
            let text = MessageRecord::new(
                Channel::Sms,
                MessagePayload::PhoneCode {
                    user_id: id,
                    challenge_id: challenge.id,
                },
                None,
                now,
            );
            let changes = UserChanges {
                phone_challenge: Some(Some(challenge.clone())),
                ..UserChanges::default()
            };
            s.users().update(id, &changes, now)?;
            s.messages().enqueue(&[text])?;
            Ok(Ok(challenge))
        })
        .await??;
    svc.actors.outbox_wake.notify_one();
    Ok(challenge)
}

/// Takes a phone code (self or admin): the right one makes the number the account's own,
/// confirmed (and takes it from any account that had confirmed it: the number belongs to whoever
/// proves it last); a wrong one uses a try (422). 1 key, plus one per account losing the number.
pub async fn confirm_phone(svc: &Services, id: Uuid, code: String) -> Result<User, Error> {
    let now = svc.clock.now();
    let signer = svc.signer.clone();
    let outcome = svc
        .store
        .write(move |s| {
            let users = s.users();
            let user = users.get(id)?.ok_or(StoreError::NotFound)?;
            let Some(mut challenge) = user.phone_challenge.clone() else {
                return Ok(Err(PhoneRefusal::NoCode));
            };
            let wanted = signer.phone_code(challenge.id, id, challenge.phone.as_str());
            let right = same_secret(code.trim().as_bytes(), wanted.as_bytes());
            let answer = challenge.answer(right, now);
            let mut changes = UserChanges {
                phone_challenge: Some(Some(challenge.clone())),
                ..UserChanges::default()
            };
            match answer {
                Ok(phone) => {
                    // (The update takes the number from any account that had proven it.)
                    changes.phone = Some(Some(phone));
                    changes.phone_verified_at = Some(Some(now));
                    Ok(Ok(users.update(id, &changes, now)?))
                }
                Err(PhoneRefusal::Wrong) => {
                    users.update(id, &changes, now)?;
                    Ok(Err(PhoneRefusal::Wrong))
                }
                Err(refusal) => Ok(Err(refusal)),
            }
        })
        .await?;
    match outcome {
        Ok(user) => {
            tracing::info!(user = %id, "phone number confirmed");
            Ok(user)
        }
        Err(e @ PhoneRefusal::TooManySent) => Err(Error::TooMany(e.to_string())),
        Err(e) => Err(Error::invalid("code", e.to_string())),
    }
}

/// Erases a user and their personal data: how many tokens went. An admin cannot erase
/// themselves (409).
pub async fn erase(svc: &Services, who: &Principal, id: Uuid) -> Result<usize, Error> {
    who.may_access_user(id)?;
    if who.role.includes(Role::Admin) && who.user_id == Some(id) {
        return Err(Error::Conflict("an admin cannot erase themselves".into()));
    }
    let (tokens, deliveries) = svc.actors.registry.get(id).send(EraseUser).await??;
    svc.actors.registry.forget(id);
    let files = erase_files(svc, deliveries).await;
    tracing::info!(user = %id, tokens, mail_files = files, "user erased");
    Ok(tokens)
}

/// Removes the file transport's copies of erased messages (none with SMTP): how many.
async fn erase_files(svc: &Services, names: Vec<String>) -> usize {
    if names.is_empty() {
        return 0;
    }
    let store_path = svc.settings.store.path.clone();
    tokio::task::spawn_blocking(move || crate::delivery::email::erase_files(&store_path, &names))
        .await
        .unwrap_or(0)
}

/// [`erase_files`] of messages erased by id.
async fn erase_mail_files(svc: &Services, messages: Vec<Uuid>) -> usize {
    erase_files(svc, messages.iter().map(Uuid::to_string).collect()).await
}

async fn read(store: &Store, id: Uuid) -> Result<User, Error> {
    store
        .run(move |s| s.users().get(id))
        .await?
        .ok_or(Error::NotFound)
}
