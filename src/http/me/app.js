// voucherd customer page: sign up or in, then the wallet (a QR code per code), what you follow,
// vouchers of it and your settings — all through the API with the token signing in gives (kept
// in the tab's session storage). Shared helpers are in /ui.js.
"use strict";

const TOKEN_KEY = "voucherd-customer-token";
let token = sessionStorage.getItem(TOKEN_KEY);
let me = null;
// Object URLs of the QR codes shown, revoked when the wallet is drawn again.
let qrUrls = [];

const api = (method, path, body, opts) =>
  request(token, () => signOut("Your session has ended: sign in again."), method, path, body, opts);
const json = async (path) => (await api("GET", path)).json();
const mine = (path) => "/users/" + encodeURIComponent(me.id) + path;

function failed(what, e, where) {
  if (!(e instanceof SignedOut)) (where ? tell(where, what + ": " + e.message, true) : say(what + ": " + e.message, true));
}

/** A message beside the part that acted (where the customer looks, on a phone too). */
function tell(id, text, isError) {
  const p = $(id);
  p.textContent = text;
  p.className = isError ? "error" : "";
  if (text) p.scrollIntoView({ block: "nearest" });
}

// --- signing up, in and out -------------------------------------------------------------------

async function getToken(email, password) {
  const res = await fetch("/api/v1/auth/tokens", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (res.status === 401) {
    throw new Error("Wrong email or password. Just signed up? Open the link we emailed you first: your account starts when you do.");
  }
  if (!res.ok) throw new Error("Signing in failed (" + res.status + ").");
  return (await res.json()).token;
}

async function signIn(event) {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    token = await getToken($("email").value.trim(), $("password").value);
    sessionStorage.setItem(TOKEN_KEY, token);
    $("password").value = "";
    await show();
  } catch (e) {
    token = null;
    $("sign-in-error").textContent = e.message;
  }
}

async function signUp(event) {
  event.preventDefault();
  $("sign-up-error").textContent = "";
  const email = $("up-email").value.trim();
  const password = $("up-password").value;
  try {
    const res = await fetch("/api/v1/users", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        email,
        password,
        timezone: $("up-timezone").value.trim(),
        digest_hour: Number($("up-hour").value),
        marketing_emails: $("up-marketing").checked,
      }),
    });
    if (!res.ok) {
      let detail = "Signing up failed (" + res.status + ").";
      try {
        const p = await res.json();
        detail = p.detail || detail;
      } catch (_) {
        // keep the status line
      }
      throw new Error(detail);
    }
    if (res.status === 202) {
      // The address is confirmed by the link sent to it; the answer says no more than that.
      $("up-password").value = "";
      $("sign-up-form").reset();
      $("up-timezone").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
      $("sign-up-error").textContent = "";
      tell("sign-up-done", "Thank you! Look in the mailbox of " + email + ": a link to confirm it is on its way (or, if the address has an account already, a note saying so). Open the link and enter your password there: your account starts then, and you can sign in.");
      return;
    }
    token = await getToken(email, password);
    sessionStorage.setItem(TOKEN_KEY, token);
    $("up-password").value = "";
    say("Welcome! Follow a few retailers or categories to get your digest.");
    await show();
  } catch (e) {
    token = null;
    $("sign-up-error").textContent = e.message;
  }
}

function signOut(why) {
  if (token) {
    fetch("/api/v1/auth/tokens/current", { method: "DELETE", headers: { Authorization: "Bearer " + token } }).catch(() => {});
  }
  token = null;
  me = null;
  sessionStorage.removeItem(TOKEN_KEY);
  for (const body of $("account").querySelectorAll("tbody")) body.replaceChildren();
  for (const u of qrUrls) URL.revokeObjectURL(u);
  qrUrls = [];
  $("account").hidden = true;
  $("welcome").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  say(typeof why === "string" ? why : "");
}

async function show() {
  me = await json("/users/me");
  $("who").textContent = me.email;
  $("welcome").hidden = true;
  $("account").hidden = false;
  $("sign-out").hidden = false;
  settingsFromMe();
  await Promise.all([showWallet(), showFollows(), names()]);
  await showVouchers();
  // A link from an email (/me#wallet) lands on its part once the page is drawn.
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

// --- the wallet ---------------------------------------------------------------------------------

async function showWallet() {
  const [w, unpaid] = await Promise.all([json("/wallet"), json("/orders?status=pending_payment")]);
  $("unpaid-part").hidden = unpaid.items.length === 0;
  fill("unpaid-orders", unpaid.items.map((o) => {
    const tr = document.createElement("tr");
    tr.append(cell(o.campaign), cell(o.quantity, "num"), cell(money(o.amount_cents), "num"), cell(when(o.pay_by)));
    return tr;
  }));
  for (const u of qrUrls) URL.revokeObjectURL(u);
  qrUrls = [];
  fill("codes", w.items.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.code = c.code;
    const img = document.createElement("img");
    img.className = "qr";
    img.alt = "QR code of " + c.code;
    img.width = 120;
    img.height = 120;
    if (c.status === "claimed") {
      api("GET", "/codes/" + encodeURIComponent(c.code) + "/qr.svg")
        .then((r) => r.blob())
        .then((b) => {
          const url = URL.createObjectURL(b);
          qrUrls.push(url);
          img.src = url;
        })
        .catch((e) => failed("Could not draw the QR code of " + c.code, e));
    }
    tr.append(
      cell(c.code, "code"),
      cell(c.campaign),
      cell(c.status === "claimed" ? "ready to use" : c.status, "status status-" + c.status),
      cell(when(c.valid_until)),
      cell(c.balance_cents === null ? "–" : money(c.balance_cents), "num"),
      cell(c.status === "claimed" ? img : "–"),
    );
    return tr;
  }));
  fill("provider-codes", w.provider_codes.map((p) => {
    const tr = document.createElement("tr");
    tr.append(cell(p.code, "code"), cell(p.provider), cell(p.product), cell(when(p.fulfilled_at)));
    return tr;
  }));
}

// --- what they follow ---------------------------------------------------------------------------

let follows = [];

async function showFollows() {
  const page = await json(mine("/subscriptions?limit=500"));
  follows = page.items;
  fill("follow-list", follows.map((f) => {
    const tr = document.createElement("tr");
    const what = f.retailer ? "retailer " + f.retailer : "category " + f.category;
    tr.dataset.follow = f.retailer || f.category;
    tr.append(
      cell(what),
      cell(when(f.created_at)),
      cell(button("Stop following", "unfollow", async () => {
        try {
          await api("DELETE", mine("/subscriptions/" + encodeURIComponent(f.id)));
          say("You no longer follow " + what + ".");
          await showFollows();
          await showVouchers();
        } catch (e) {
          failed("Could not stop following " + what, e);
        }
      })),
    );
    return tr;
  }));
}

/** The names to choose from: retailers and categories with vouchers (up to 500 of each). */
async function names() {
  const [retailers, categories] = await Promise.all([json("/retailers?limit=500"), json("/categories?limit=500")]);
  for (const [id, page] of [["retailer-names", retailers], ["category-names", categories]]) {
    $(id).replaceChildren(...page.items.map((n) => new Option(n.name)));
  }
}

async function follow(event, kind) {
  event.preventDefault();
  const input = $("follow-" + kind);
  const name = input.value.trim();
  try {
    await api("POST", mine("/subscriptions"), { [kind]: name });
    input.value = "";
    say("You follow " + kind + " " + name + " now.");
    await showFollows();
    await showVouchers();
  } catch (e) {
    failed("Could not follow " + name, e);
  }
}

// --- vouchers of what they follow -----------------------------------------------------------

async function showVouchers() {
  const pages = await Promise.all(follows.slice(0, 20).map((f) =>
    json("/vouchers?limit=10&" + (f.retailer ? "retailer=" + encodeURIComponent(f.retailer) : "category=" + encodeURIComponent(f.category)))));
  const seen = new Set();
  const rows = [];
  for (const v of pages.flatMap((p) => p.items)) {
    if (seen.has(v.id)) continue;
    seen.add(v.id);
    const tr = document.createElement("tr");
    let offer = document.createTextNode(v.title);
    if (v.url && /^https?:\/\//.test(v.url)) {
      offer = document.createElement("a");
      offer.href = v.url;
      offer.rel = "noopener noreferrer";
      offer.textContent = v.title;
    }
    tr.append(cell(v.retailer), cell(offer), cell(v.code_is_pattern ? null : v.code, "code"), cell(when(v.ends_at)));
    rows.push(tr);
  }
  fill("voucher-list", rows);
}

// --- settings -----------------------------------------------------------------------------------

function settingsFromMe() {
  $("set-timezone").value = me.timezone;
  $("set-hour").value = me.digest_hour;
  $("set-frequency").value = me.digest_frequency;
  $("set-email").value = me.pending_email || me.email;
  $("set-current-password").value = "";
  $("set-phone").value = me.phone || "";
  $("set-marketing").checked = me.marketing_emails;
  $("phone-state").textContent = me.phone
    ? me.phone + (me.phone_verified ? " is confirmed." : " is not confirmed yet: send yourself a code.")
    : "Codes by text message and a till's look-up use your number once it is confirmed.";
  const waiting = !me.email_verified || me.pending_email;
  $("unconfirmed").hidden = !waiting;
  $("unconfirmed-text").textContent = me.pending_email
    ? "We sent a link to " + me.pending_email + ". Your address stays " + me.email + " until you open it."
    : "We sent a link to " + me.email + ". Until you open it, no codes can go to your account.";
}

async function saveSettings(event) {
  event.preventDefault();
  const email = $("set-email").value.trim();
  const change = {
    timezone: $("set-timezone").value.trim(),
    digest_hour: Number($("set-hour").value),
    digest_frequency: $("set-frequency").value,
    marketing_emails: $("set-marketing").checked,
  };
  if (email !== me.email && email !== me.pending_email) {
    change.email = email;
    change.current_password = $("set-current-password").value;
  }
  try {
    me = await (await api("PATCH", mine(""), change)).json();
    settingsFromMe();
    tell("settings-message", change.email ? "Saved. Open the link we sent to " + email + " to use it." : "Saved.");
  } catch (e) {
    failed("Could not save", e, "settings-message");
  }
}

async function resendLink() {
  try {
    await api("POST", mine("/email/verification"));
    tell("resend-message", "A new link is on its way.");
  } catch (e) {
    failed("Could not send the link", e, "resend-message");
  }
}

async function sendPhoneCode(event) {
  event.preventDefault();
  const phone = $("set-phone").value.trim();
  try {
    const sent = await (await api("POST", mine("/phone/verification"), { phone })).json();
    $("phone-code-form").hidden = false;
    $("phone-code").focus();
    tell("phone-message", "A code is on its way to " + sent.phone + ". Type it above.");
  } catch (e) {
    failed("Could not send a code", e, "phone-message");
  }
}

async function confirmPhone(event) {
  event.preventDefault();
  try {
    me = await (await api("POST", mine("/phone/verify"), { code: $("phone-code").value.trim() })).json();
    $("phone-code").value = "";
    $("phone-code-form").hidden = true;
    settingsFromMe();
    tell("phone-message", "Your number " + me.phone + " is confirmed.");
  } catch (e) {
    failed("Could not confirm the number", e, "phone-message");
  }
}

async function erase() {
  const b = $("erase-button");
  if (!b.dataset.armed) {
    // A second click confirms: it cannot be undone.
    b.dataset.armed = "1";
    b.textContent = "Really delete my account and everything in it?";
    return;
  }
  try {
    await api("DELETE", mine(""));
    delete b.dataset.armed;
    b.textContent = "Delete my account";
    token = null;
    signOut("Your account and its data are deleted.");
  } catch (e) {
    failed("Could not delete the account", e);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-up-form").addEventListener("submit", signUp);
  $("sign-out").addEventListener("click", () => signOut());
  $("follow-retailer-form").addEventListener("submit", (e) => follow(e, "retailer"));
  $("follow-category-form").addEventListener("submit", (e) => follow(e, "category"));
  $("settings-form").addEventListener("submit", saveSettings);
  $("resend-button").addEventListener("click", resendLink);
  $("phone-form").addEventListener("submit", sendPhoneCode);
  $("phone-code-form").addEventListener("submit", confirmPhone);
  $("erase-button").addEventListener("click", erase);
  $("up-timezone").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  if (token) {
    try {
      await show();
    } catch (_) {
      signOut();
    }
  }
});
