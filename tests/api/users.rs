//! Registration and user management as clients see it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

/// A visitor signs up: 202 and a link by email; the account starts when the link is opened with
/// the password chosen at sign-up (nothing signs in before); once it exists, the same address
/// again (in any case) answers the same 202, makes no second account and tells the owner
/// instead.
#[actix_web::test]
async fn registration_creates_a_customer_with_defaults_confirmed_by_a_link() {
    let app = spawn_app().await;
    let res = app
        .register("Jane@Example.org", "s3cret-pass", "Asia/Kolkata")
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["status"], "confirmation_sent");
    assert!(first.get("id").is_none(), "{first}");

    // No account before the address is confirmed: nothing to sign in to.
    assert_problem(
        app.try_login("JANE@example.org", "s3cret-pass").await,
        401,
        "invalid_credentials",
    )
    .await;

    // The link confirms the address; an altered one confirms nothing.
    let link = app.confirmation_token("Jane@Example.org").await;
    let altered = format!("{}0", &link[..link.len() - 1]);
    let altered = if altered == link {
        format!("{}1", &link[..link.len() - 1])
    } else {
        altered
    };
    assert_problem(
        app.confirm_email(&altered, "s3cret-pass").await,
        404,
        "not_found",
    )
    .await;
    // The link alone is not enough: whoever opens it proves they made the account.
    assert_problem(
        app.confirm_email(&link, "other-pass-1").await,
        401,
        "invalid_credentials",
    )
    .await;
    let res = app.confirm_email(&link, "s3cret-pass").await;
    assert_eq!(res.status(), StatusCode::OK);
    let confirmed: Value = res.json().await.unwrap();
    assert_eq!(confirmed["email_verified"], true);
    // Signed in: the account with what the sign-up gave and its defaults.
    let token = app.login("JANE@example.org", "s3cret-pass").await;
    let user: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(user["id"], confirmed["id"]);
    assert_eq!(user["email"], "Jane@Example.org");
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["role"], "customer");
    assert_eq!(user["timezone"], "Asia/Kolkata");
    assert_eq!(user["digest_hour"], 8);
    assert_eq!(user["digest_frequency"], "daily");
    assert_eq!(user["marketing_emails"], false, "consent is never assumed");
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());
    // Confirmed, the same address in another case: the same answer, no second account, the
    // owner told.
    let dup = app
        .register("jane@example.ORG", "other-pass-1", "UTC")
        .await;
    assert_eq!(dup.status(), StatusCode::ACCEPTED);
    assert_eq!(dup.json::<Value>().await.unwrap(), first);
    crate::helpers::eventually("the owner's notice", || async {
        app.mails_to("Jane@Example.org")
            .iter()
            .any(|m| m.contains("has an account already"))
            .then_some(())
    })
    .await;
    let found: Value = app
        .list_users(&app.admin_token, "?email=jane%40example.org")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_problem(
        app.try_login("jane@example.org", "other-pass-1").await,
        401,
        "invalid_credentials",
    )
    .await;

    // A manager making an account with a taken address is told so.
    let res = app
        .create_user(
            json!({"email": "JANE@example.org", "password": "password-1", "timezone": "UTC"}),
        )
        .await;
    assert_problem(res, 409, "conflict").await;
}

#[actix_web::test]
async fn registration_takes_phone_hour_and_frequency() {
    let app = spawn_app().await;
    // Made by the admin: address and number vouched for.
    let res = app
        .create_user(
            json!({"email": "p@x.io", "password": "password-9", "timezone": "America/New_York",
            "phone": "+14155550100", "digest_hour": 0, "digest_frequency": "weekly",
            "marketing_emails": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let user: Value = res.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/users/{}", user["id"].as_str().unwrap())
    );
    assert_eq!(user["phone"], "+14155550100");
    assert_eq!(user["phone_verified"], true);
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["marketing_emails"], true);
    assert_eq!(user["digest_hour"], 0);
    assert_eq!(user["digest_frequency"], "weekly");

    // Typed by a visitor, a number is theirs only once a code proves it.
    let res = app
        .call(
            Method::POST,
            "/api/v1/users",
            None,
            Some(
                json!({"email": "q@x.io", "password": "password-9", "timezone": "UTC",
                "phone": "+14155550101"}),
            ),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let link = app.confirmation_token("q@x.io").await;
    let me: Value = app
        .confirm_email(&link, "password-9")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["phone"].as_str(), &me["phone_verified"]),
        (Some("+14155550101"), &json!(false))
    );
}

#[actix_web::test]
async fn a_customer_reaches_only_their_own_user() {
    let app = spawn_app().await;
    let (alice, alice_token) = app.customer("alice@x.io").await;
    let (bob, _) = app.customer("bob@x.io").await;

    assert_eq!(
        app.get_user(&alice, &alice_token).await.status(),
        StatusCode::OK
    );
    // Another user's id is indistinguishable from a missing one.
    assert_problem(app.get_user(&bob, &alice_token).await, 404, "not_found").await;
    assert_problem(
        app.patch_user(&bob, &alice_token, json!({"digest_hour": 3}))
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(app.delete_user(&bob, &alice_token).await, 404, "not_found").await;
    // Admin-only routes are forbidden.
    assert_problem(app.list_users(&alice_token, "").await, 403, "forbidden").await;
    assert_problem(
        app.set_role(&alice, &alice_token, "admin").await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.create_api_key(&alice_token, "k", "admin").await,
        403,
        "forbidden",
    )
    .await;
    // Bob is untouched.
    let bob_now: Value = app
        .get_user(&bob, &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bob_now["digest_hour"], 8);
}

#[actix_web::test]
async fn patch_changes_fields_and_ignores_role_unless_admin() {
    let app = spawn_app().await;
    let (id, token) = app.customer("carol@x.io").await;
    let res = app
        .patch_user(
            &id,
            &token,
            json!({"timezone": "Pacific/Chatham", "digest_hour": 21, "digest_frequency": "off",
                   "phone": "+64211234567", "role": "admin"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["timezone"], "Pacific/Chatham");
    assert_eq!(user["digest_hour"], 21);
    assert_eq!(user["digest_frequency"], "off");
    assert_eq!(user["phone"], "+64211234567");
    assert_eq!(
        user["role"], "customer",
        "a customer cannot promote themselves"
    );
    assert_ne!(user["updated_at"], user["created_at"]);

    // null clears the phone; a new password works at the next login, the old one does not.
    let res = app
        .patch_user(
            &id,
            &token,
            json!({"phone": null, "password": "brand-new-pass",
                   "current_password": "customer-password"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let user: Value = res.json().await.unwrap();
    assert!(user["phone"].is_null());
    assert_problem(
        app.try_login("carol@x.io", "customer-password").await,
        401,
        "invalid_credentials",
    )
    .await;
    app.login("carol@x.io", "brand-new-pass").await;

    // An admin's PATCH may set the role.
    let res = app
        .patch_user(&id, &app.admin_token, json!({"role": "manager"}))
        .await;
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["role"], "manager");
}

/// A new address waits for its owner: the answer is the same whether or not it has an account
/// (no way to probe addresses), the account keeps its address until the link is opened, and a
/// link to an address another account holds confirms nothing.
#[actix_web::test]
async fn email_change_is_confirmed_by_the_new_address_and_keeps_addresses_unique() {
    let app = spawn_app().await;
    let (id, token) = app.customer("dave@x.io").await;
    app.customer("erin@x.io").await;
    let res = app
        .patch_user(
            &id,
            &token,
            json!({"email": "ERIN@x.io", "current_password": "customer-password"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let user: Value = res.json().await.unwrap();
    assert_eq!(
        (user["email"].as_str(), user["pending_email"].as_str()),
        (Some("dave@x.io"), Some("ERIN@x.io"))
    );
    // Erin's owner opens it: they do not know Dave's password, and with it the address is
    // still Erin's: nothing changes.
    let link = app.confirmation_token("ERIN@x.io").await;
    assert_problem(
        app.confirm_email(&link, "erin-guess").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_problem(
        app.confirm_email(&link, "customer-password").await,
        409,
        "conflict",
    )
    .await;

    let res = app
        .patch_user(
            &id,
            &token,
            json!({"email": "dave2@x.io", "current_password": "customer-password"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    app.login("dave@x.io", "customer-password").await;
    // The older link (to Erin) no longer confirms anything for Dave.
    assert_problem(
        app.confirm_email(&link, "customer-password").await,
        404,
        "not_found",
    )
    .await;
    let link = app.confirmation_token("dave2@x.io").await;
    let res = app.confirm_email(&link, "customer-password").await;
    assert_eq!(res.status(), StatusCode::OK);
    let user: Value = res.json().await.unwrap();
    assert_eq!(
        (user["email"].as_str(), user["email_verified"].as_bool()),
        (Some("dave2@x.io"), Some(true))
    );
    assert!(user["pending_email"].is_null());
    // The old address is free again, the new one signs in.
    let res = app
        .create_user(json!({"email": "dave@x.io", "password": "password-77", "timezone": "UTC"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.login("dave2@x.io", "customer-password").await;
}

#[actix_web::test]
async fn roles_are_set_by_admins_and_take_effect_at_once() {
    let app = spawn_app().await;
    let (id, token) = app.customer("mgr@x.io").await;
    assert_problem(app.list_users(&token, "").await, 403, "forbidden").await;
    let res = app.set_role(&id, &app.admin_token, "admin").await;
    assert_eq!(res.status(), StatusCode::OK);
    // The same token now carries the new role.
    assert_eq!(app.list_users(&token, "").await.status(), StatusCode::OK);
    assert_problem(
        app.set_role(&id, &app.admin_token, "emperor").await,
        422,
        "validation_failed",
    )
    .await;
    // An admin cannot lock themselves out.
    let admin: Value = app.me(&app.admin_token).await.json().await.unwrap();
    let admin_id = admin["id"].as_str().unwrap();
    assert_problem(
        app.set_role(admin_id, &app.admin_token, "customer").await,
        409,
        "conflict",
    )
    .await;
}

#[actix_web::test]
async fn delete_erases_the_user_and_their_tokens() {
    let app = spawn_app().await;
    let (id, token) = app.customer("gone@x.io").await;
    let other_session = app.login("gone@x.io", "customer-password").await;
    assert_eq!(
        app.delete_user(&id, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(app.get_user(&id, &app.admin_token).await, 404, "not_found").await;
    assert_problem(app.me(&other_session).await, 401, "unauthorized").await;
    assert_problem(
        app.try_login("gone@x.io", "customer-password").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert!(
        app.all_users()
            .await
            .iter()
            .all(|u| u["email"] != "gone@x.io")
    );
    // The address can be used again.
    let res = app
        .create_user(json!({"email": "gone@x.io", "password": "password-1234", "timezone": "UTC"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn the_user_list_pages_with_cursors() {
    let app = spawn_app().await;
    for i in 0..7 {
        app.create_user(
            json!({"email": format!("u{i}@x.io"), "password": "password-1",
            "timezone": "UTC"}),
        )
        .await
        .error_for_status()
        .unwrap();
    }
    let first: Value = app
        .list_users(&app.admin_token, "?limit=3")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .list_users(&app.admin_token, &format!("?limit=3&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    // Admin + 7 users, each exactly once across pages, in creation order.
    let all = app.all_users().await;
    assert_eq!(all.len(), 8);
    let emails: Vec<&str> = all.iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails[0], "admin@localhost");
    assert_eq!(
        &emails[1..],
        [
            "u0@x.io", "u1@x.io", "u2@x.io", "u3@x.io", "u4@x.io", "u5@x.io", "u6@x.io"
        ]
    );
    assert_problem(
        app.list_users(&app.admin_token, "?limit=501").await,
        400,
        "validation_failed",
    )
    .await;
    assert_problem(
        app.list_users(&app.admin_token, "?cursor=zzz").await,
        400,
        "validation_failed",
    )
    .await;
}

#[actix_web::test]
async fn email_and_password_changes_need_the_current_password() {
    let app = spawn_app().await;
    let (id, token) = app.customer("fay@x.io").await;
    // A stolen session alone cannot take the account over: missing or wrong, nothing changes.
    for body in [
        json!({"email": "mallory@x.io"}),
        json!({"password": "mallory-owns-it"}),
        json!({"email": "mallory@x.io", "current_password": "not-the-password"}),
        json!({"password": "mallory-owns-it", "current_password": "not-the-password"}),
    ] {
        let problem = assert_problem(
            app.patch_user(&id, &token, body.clone()).await,
            403,
            "forbidden",
        )
        .await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("current_password"),
            "{body}: {problem}"
        );
    }
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["email"], "fay@x.io");
    app.login("fay@x.io", "customer-password").await;
    // Other fields need no password.
    let res = app.patch_user(&id, &token, json!({"digest_hour": 7})).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_password_change_revokes_every_other_token_of_the_user() {
    let app = spawn_app().await;
    let (id, token) = app.customer("gus@x.io").await;
    let phone = app.login("gus@x.io", "customer-password").await;
    let laptop = app.login("gus@x.io", "customer-password").await;
    let (_, other_user) = app.customer("hal@x.io").await;
    let res = app
        .patch_user(
            &id,
            &token,
            json!({"password": "gus-new-password", "current_password": "customer-password"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The session that changed it stays; the others are gone; other users are untouched.
    assert_eq!(app.me(&token).await.status(), StatusCode::OK);
    assert_problem(app.me(&phone).await, 401, "unauthorized").await;
    assert_problem(app.me(&laptop).await, 401, "unauthorized").await;
    assert_eq!(app.me(&other_user).await.status(), StatusCode::OK);

    // An admin resetting someone's password needs no current password, and every session of
    // that user ends.
    let res = app
        .patch_user(&id, &app.admin_token, json!({"password": "reset-by-admin"}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(app.me(&token).await, 401, "unauthorized").await;
    assert_eq!(app.me(&app.admin_token).await.status(), StatusCode::OK);
    app.login("gus@x.io", "reset-by-admin").await;
}

async fn me_id(app: &crate::helpers::TestApp, token: &str) -> Value {
    app.me(token).await.json::<Value>().await.unwrap()["id"].clone()
}

/// A visitor's account starts when they open the link mailed to them with their password: no
/// sign-in before it. An account made while confirmation was off (`[accounts] verify_email =
/// false`) is unconfirmed once it is turned on: it signs in, gets no code and texts no phone
/// code until it asks for a link and opens it.
#[actix_web::test]
async fn a_visitor_who_confirms_their_address_gets_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.accounts.verify_email = false;
    let app = crate::helpers::spawn_with(settings.clone(), dir).await;
    let res = app.register("early@x.io", "password-0", "UTC").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    settings.accounts.verify_email = true;
    settings.delivery.sms.url = "http://127.0.0.1:9/sms".into();
    let app = crate::helpers::spawn_with(settings, app.stop().await).await;
    let campaign = app.active_campaign(5, 1).await;

    let res = app.register("late@x.io", "password-1", "UTC").await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_problem(
        app.try_login("late@x.io", "password-1").await,
        401,
        "invalid_credentials",
    )
    .await;
    let link = app.confirmation_token("late@x.io").await;
    let res = app.confirm_email(&link, "password-1").await;
    assert_eq!(res.status(), StatusCode::OK);
    let token = app.login("late@x.io", "password-1").await;
    assert_eq!(
        app.claim(&campaign, &token, None).await.status(),
        StatusCode::CREATED
    );
    // Opened again, the link says the same and makes nothing more.
    let again = app.confirm_email(&link, "password-1").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        again.json::<Value>().await.unwrap()["id"],
        me_id(&app, &token).await
    );

    // The account from before: signs in, gets nothing, until its address is confirmed.
    let token = app.login("early@x.io", "password-0").await;
    assert_problem(
        app.claim(&campaign, &token, None).await,
        403,
        "email_unverified",
    )
    .await;
    let me: Value = app.me(&token).await.json().await.unwrap();
    assert_eq!(me["email_verified"], false);
    let id = me["id"].as_str().unwrap();
    // Refused, again and again: no text goes, and none of the number's allowance is spent.
    for _ in 0..12 {
        let res = app
            .call(
                Method::POST,
                &format!("/api/v1/users/{id}/phone/verification"),
                Some(&token),
                Some(json!({"phone": "+33612345671"})),
            )
            .await;
        assert_problem(res, 403, "email_unverified").await;
    }
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/users/{id}/email/verification"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let link = app.confirmation_token("early@x.io").await;
    assert_eq!(
        app.confirm_email(&link, "password-0").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.claim(&campaign, &token, None).await.status(),
        StatusCode::CREATED
    );
    // Confirmed once is confirmed: nothing more to send.
    let res = app
        .call(
            Method::POST,
            &format!("/api/v1/users/{id}/email/verification"),
            Some(&token),
            None,
        )
        .await;
    assert_problem(res, 409, "conflict").await;
    // The whole way in one helper, as a newcomer goes.
    let (_, token) = app.signed_up("new@x.io", "password-2").await;
    assert_eq!(
        app.claim(&campaign, &token, None).await.status(),
        StatusCode::CREATED
    );
}

/// A sign-up nobody confirms ends when its link expires: the link then confirms nothing (409
/// until the housekeeper ends it, 404 after), the mail sent for it is gone, and the address can
/// be signed up for again.
#[actix_web::test]
async fn a_sign_up_nobody_confirms_ends_when_its_link_expires() {
    let clock = voucherd::clock::ManualClock::new(chrono::Utc::now());
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::helpers::test_settings(dir.path().join("data"));
    let hours = i64::from(settings.accounts.verification_link_hours);
    let app = crate::helpers::spawn_with_clock(settings, dir, clock.clone()).await;
    let res = app.register("slow@x.io", "password-1", "UTC").await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let link = app.confirmation_token("slow@x.io").await;
    clock.advance(chrono::Duration::hours(hours) + chrono::Duration::seconds(1));
    // Expired, it says so before looking at the password: it tells nothing of it.
    let res = app.confirm_email(&link, "not-the-password").await;
    assert!(
        [StatusCode::CONFLICT, StatusCode::NOT_FOUND].contains(&res.status()),
        "{}",
        res.status()
    );
    app.actors.wake_all();
    crate::helpers::eventually("the expired sign-up ended", || async {
        let res = app.confirm_email(&link, "password-1").await;
        (res.status() == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    crate::helpers::eventually("its mail erased", || async {
        app.mails_to("slow@x.io").is_empty().then_some(())
    })
    .await;
    let res = app.register("slow@x.io", "password-2", "UTC").await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let link = app.confirmation_token("slow@x.io").await;
    assert_eq!(
        app.confirm_email(&link, "password-2").await.status(),
        StatusCode::OK
    );
    app.login("slow@x.io", "password-2").await;
}

/// Opening a link with a password is a sign-in of its account: wrong tries are throttled with
/// the account's sign-ins (`[rate_limit] login_per_minute` per client address), so a link is no
/// faster way to guess a password.
#[actix_web::test]
async fn a_link_is_no_faster_way_to_guess_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.rate_limit.login_per_minute = 3;
    let app = crate::helpers::spawn_with(settings, dir).await;
    let res = app.register("guess@x.io", "the-password", "UTC").await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let link = app.confirmation_token("guess@x.io").await;
    for guess in ["guess-1", "guess-2", "guess-3"] {
        assert_problem(
            app.confirm_email(&link, guess).await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_problem(
        app.confirm_email(&link, "the-password").await,
        429,
        "rate_limited",
    )
    .await;
    assert_problem(
        app.try_login("guess@x.io", "the-password").await,
        429,
        "rate_limited",
    )
    .await;
}

/// Sign-ups waiting for their link are bounded for the whole server (`[accounts]
/// max_waiting_signups`): past it every sign-up answers 503, whatever its address; a confirmed
/// one makes room. A link opened twice at once (a double click) makes one account and answers
/// both with it.
#[actix_web::test]
async fn waiting_sign_ups_are_bounded_and_a_double_click_makes_one_account() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::test_settings(dir.path().join("data"));
    settings.accounts.max_waiting_signups = 2;
    let app = crate::helpers::spawn_with(settings, dir).await;
    for email in ["one@x.io", "two@x.io"] {
        let res = app.register(email, "password-1", "UTC").await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    assert_problem(
        app.register("three@x.io", "password-1", "UTC").await,
        503,
        "overloaded",
    )
    .await;
    let link = app.confirmation_token("one@x.io").await;
    let (a, b, c) = tokio::join!(
        app.confirm_email(&link, "password-1"),
        app.confirm_email(&link, "password-1"),
        app.confirm_email(&link, "password-1"),
    );
    let mut ids = Vec::new();
    for res in [a, b, c] {
        assert_eq!(res.status(), StatusCode::OK);
        ids.push(res.json::<Value>().await.unwrap()["id"].clone());
    }
    assert!(ids.iter().all(|i| i == &ids[0]), "{ids:?}");
    let res = app.register("three@x.io", "password-1", "UTC").await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}
