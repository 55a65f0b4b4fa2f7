// voucherd console: signs in through the API and reads and changes everything with the token it
// gets. Helpers shared with the customer page (request, cell, fill, …) are in /ui.js.
"use strict";

const TOKEN_KEY = "voucherd-token";
// Set when the token came from signing in here (a session token this page may revoke).
const OWN_KEY = "voucherd-own-token";
let token = sessionStorage.getItem(TOKEN_KEY);
// The campaign open in the detail panel (as the API last showed it).
let current = null;

/// The API with this page's token; a 401 signs the page out.
const api = (method, path, body, opts) =>
  request(token, () => signOut("Your session has ended: sign in again."), method, path, body, opts);
const json = async (path) => (await api("GET", path)).json();

// --- signing in and out ---------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  const pasted = $("token").value.trim();
  try {
    if (pasted) {
      token = pasted;
    } else {
      const res = await fetch("/api/v1/auth/tokens", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email: $("email").value.trim(), password: $("password").value }),
      });
      if (!res.ok) {
        throw new Error(res.status === 401 ? "Wrong email or password." : "Sign-in failed (" + res.status + ").");
      }
      token = (await res.json()).token;
    }
    const me = await json("/users/me");
    if (me.role !== "manager" && me.role !== "admin") {
      if (!pasted) revoke(token);
      token = null;
      throw new Error("The dashboard is for managers and admins.");
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    if (pasted) {
      sessionStorage.removeItem(OWN_KEY);
    } else {
      sessionStorage.setItem(OWN_KEY, "1");
    }
    $("password").value = "";
    $("token").value = "";
    show(me);
  } catch (e) {
    $("sign-in-error").textContent = e instanceof SignedOut ? "That token is not valid." : e.message;
  }
}

function revoke(t) {
  fetch("/api/v1/auth/tokens/current", { method: "DELETE", headers: { Authorization: "Bearer " + t } }).catch(() => {});
}

function signOut(why) {
  // Revoke the session token signing in made; a pasted API key stays valid.
  if (token && sessionStorage.getItem(OWN_KEY)) revoke(token);
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(OWN_KEY);
  // Nothing the last user saw stays in the page.
  $("dashboard").hidden = true;
  for (const body of $("dashboard").querySelectorAll("tbody")) body.replaceChildren();
  $("summary").replaceChildren();
  $("campaign-detail").hidden = true;
  $("chart").removeAttribute("src");
  $("campaign-detail").dataset.campaignId = "";
  current = null;
  $("till-result").replaceChildren();
  $("till-rollback").hidden = true;
  $("lookup-result").replaceChildren();
  $("lookup-toggle").hidden = true;
  $("nc-samples").replaceChildren();
  $("dist-progress").textContent = "";
  for (const f of document.querySelectorAll("#dashboard form")) f.reset();
  $("customer-detail").hidden = true;
  customer = null;
  $("key-made").hidden = true;
  $("key-value").textContent = "";
  $("settings-text").textContent = "";
  myRole = null;
  $("tabs").hidden = true;
  showTab("overview");
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("refresh").hidden = true;
  $("who").textContent = "";
  say(typeof why === "string" ? why : "");
}

let myRole = null;

function show(me) {
  myRole = me.role;
  $("who").textContent = me.email + " (" + me.role + ")";
  // What only admins may do is not offered to managers (the API refuses it anyway).
  for (const el of document.querySelectorAll(".admin-only")) el.hidden = me.role !== "admin";
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("tabs").hidden = false;
  $("sign-out").hidden = false;
  $("refresh").hidden = false;
  refresh();
}

// --- the dashboard --------------------------------------------------------------------------

async function refresh() {
  try {
    const [overview, campaigns] = await Promise.all([json("/reports/overview"), allCampaigns()]);
    summary(overview);
    showCampaigns(campaigns);
    showNetworks(overview.networks);
    showDeliveries(overview);
    fill("code-requests", overview.code_requests.map((p) => {
      const tr = document.createElement("tr");
      tr.append(cell(p.provider), cell(p.pending, "num"), cell(p.fulfilled, "num"), cell(p.failed, "num"));
      return tr;
    }));
    await showNotifications();
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not load the dashboard: " + e.message, true);
  }
}

/// Every campaign, page by page (the API gives at most 100 a page).
async function allCampaigns() {
  const all = [];
  let cursor = null;
  do {
    const page = await json("/campaigns?limit=100" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && all.length < 10000);
  return all;
}

function summary(o) {
  const card = (label, value, id) => {
    const div = document.createElement("div");
    div.className = "card";
    const v = document.createElement("strong");
    v.textContent = String(value);
    if (id) v.id = id;
    const l = document.createElement("span");
    l.textContent = label;
    div.append(v, l);
    return div;
  };
  const c = o.campaigns;
  const sent = o.deliveries.reduce((n, d) => n + d.sent, 0);
  const dead = o.deliveries.reduce((n, d) => n + d.dead, 0);
  const failing = o.networks.filter((n) => n.state === "failing" || n.state === "degraded").length;
  $("summary").replaceChildren(
    card("active campaigns", c.active, "active-campaigns"),
    card("scheduled", c.scheduled),
    card("ended", c.ended),
    card("drafts", c.draft),
    card("vouchers", o.vouchers_total),
    card("networks in trouble", failing),
    card("messages sent", sent),
    card("dead letters", dead),
  );
}

function showCampaigns(items) {
  fill("campaigns", items.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.campaignId = c.id;
    const status = cell(c.status, "status status-" + c.status);
    const actions = document.createElement("span");
    actions.className = "actions";
    actions.append(button("Open", "chart", () => openCampaign(c)));
    if (c.status !== "ended") {
      const end = button("End", "end danger", async () => {
        if (!end.dataset.armed) {
          // A second click confirms: ending cannot be undone.
          end.dataset.armed = "1";
          end.textContent = "Really end?";
          return;
        }
        end.disabled = true;
        try {
          await api("POST", "/campaigns/" + encodeURIComponent(c.id) + "/end");
          say("Ended " + c.name + ".");
          await refresh();
        } catch (e) {
          if (!(e instanceof SignedOut)) say("Could not end " + c.name + ": " + e.message, true);
          end.disabled = false;
        }
      });
      actions.append(end);
    }
    tr.append(
      cell(c.name),
      cell(c.kind),
      status,
      cell(c.codes_total, "num"),
      cell(c.claimed, "num"),
      cell(c.redeemed, "num"),
      cell(percent(c.redeemed, c.claimed), "num"),
      cell(when(c.ends_at)),
      cell(actions),
    );
    return tr;
  }));
}

let chartUrl = null;

/** A campaign's panel: the campaign, its report and chart as they are now. */
async function openCampaign(listed) {
  const id = encodeURIComponent(listed.id);
  try {
    const [c, report, chart] = await Promise.all([
      json("/campaigns/" + id),
      json("/reports/campaigns/" + id),
      api("GET", "/reports/campaigns/" + id + "/chart.svg").then((r) => r.blob()),
    ]);
    $("detail-title").textContent = c.name;
    const sold = c.kind === "gift_card" || (c.price_cents || 0) > 0;
    $("detail-figures").textContent =
      report.codes_total + " codes: " + c.available + " available, " +
      (sold ? c.reserved + " held for unpaid orders, " : "") +
      report.claimed + " claimed, " + report.redeemed + " redeemed (" +
      percent(report.redeemed, report.claimed) + "), discount given " + money(report.discount_cents_total) +
      (sold ? " · sold at " + money(c.price_cents || 0) + (c.gift_balance_cents ? " for a balance of " + money(c.gift_balance_cents) : "") : "") +
      " · days in " + c.timezone;
    $("detail-rules").textContent = describeRules(c);
    const budgets = $("detail-budgets");
    budgets.replaceChildren(...(c.budgets || []).map((b) => {
      const li = document.createElement("li");
      const what = b.measure === "discount_cents" ? "discount" : "redemptions";
      const shown = (n) => (b.measure === "discount_cents" ? (n / 100).toFixed(2) : String(n));
      li.textContent = "Budget: " + what + " per " + (b.period === "total" ? "campaign" : b.period) +
        (b.per === "customer" ? " and customer" : "") + ", used " + shown(b.used) + " of " +
        shown(b.limit) + " (" + percent(b.used, b.limit) + ")";
      return li;
    }));
    const days = report.by_day.filter((d) => d.discount_cents > 0);
    $("detail-days").textContent = days.length === 0 ? "" : "Discount per day: " +
      days.map((d) => d.date + " " + (d.discount_cents / 100).toFixed(2)).join(", ");
    const reasons = report.top_inapplicable_reasons || [];
    $("detail-reasons").textContent = reasons.length === 0 ? "" : "Inapplicable validations: " +
      reasons.map((r) => r.reason + " " + r.count).join(", ");
    if (chartUrl) URL.revokeObjectURL(chartUrl);
    chartUrl = URL.createObjectURL(chart);
    $("chart").src = chartUrl;
    $("campaign-detail").hidden = false;
    $("campaign-detail").dataset.campaignId = c.id;
    showTools(c);
    await Promise.all([showDistributions(c), showUnpaidOrders(c)]);
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not load the report of " + listed.name + ": " + e.message, true);
  }
}

/** What a campaign asks of an order, in a sentence. */
function describeRules(c) {
  const r = c.rules || {};
  const parts = [c.code_mode === "shared" ? "Shared code" : "Unique codes"];
  if (c.paused_at) parts.push("paused since " + when(c.paused_at));
  if (c.discount && c.discount.max_cents) parts.push("at most " + (c.discount.max_cents / 100).toFixed(2) + " off");
  if (r.min_order_cents) parts.push("orders from " + (r.min_order_cents / 100).toFixed(2));
  if (r.min_items) parts.push("at least " + r.min_items + " items");
  if (r.currency) parts.push("in " + r.currency);
  for (const [name, scope] of [["SKUs", r.skus], ["retailers", r.retailers], ["categories", r.categories]]) {
    if (scope && scope.include.length) parts.push(name + " " + scope.include.join(", "));
    if (scope && scope.exclude.length) parts.push("not " + name + " " + scope.exclude.join(", "));
  }
  if (r.weekdays && r.weekdays.length) parts.push("on " + r.weekdays.join(", "));
  if (r.hours && r.hours.length) parts.push("at hours " + r.hours.join(", "));
  if (c.validity_days_after_claim) {
    parts.push("valid " + c.validity_days_after_claim + " days after a claim" +
      (c.expire_at_local_end_of_day ? ", to the holder's midnight" : ""));
  }
  return parts.join(" · ");
}

function showNetworks(networks) {
  fill("networks", networks.map((n) => {
    const tr = document.createElement("tr");
    tr.dataset.network = n.name;
    const pull = button("Pull now", "pull", async () => {
      pull.disabled = true;
      say("Pulling " + n.name + "…");
      try {
        const r = await (await api("POST", "/networks/" + encodeURIComponent(n.name) + "/pull")).json();
        say(n.name + ": " + (r.ok === false ? "failed: " + r.error : r.fetched + " fetched, " + r.inserted + " new, " + r.updated + " updated"), r.ok === false);
        await refresh();
      } catch (e) {
        if (!(e instanceof SignedOut)) say("Could not pull " + n.name + ": " + (e.status === 403 ? "admins only" : e.message), true);
        pull.disabled = false;
      }
    });
    tr.append(
      cell(n.name),
      cell(n.kind),
      cell(n.state, "status status-" + n.state),
      cell(n.vouchers_active, "num"),
      cell(when(n.last_success_at)),
      cell(n.failures, "num"),
      cell(n.last_error),
      cell(pull),
    );
    return tr;
  }));
}

function showDeliveries(o) {
  fill("deliveries", o.deliveries.map((d) => {
    const tr = document.createElement("tr");
    tr.append(cell(d.channel), ...[d.pending, d.sending, d.retrying, d.sent, d.failed_attempts, d.dead].map((n) => cell(n, "num")));
    return tr;
  }));
  fill("recent-deliveries", o.recent_deliveries.map((d) => {
    const tr = document.createElement("tr");
    tr.append(cell(when(d.updated_at)), cell(d.channel), cell(d.kind), cell(d.status, "status status-" + d.status),
      cell(d.attempts, "num"), cell(d.last_error));
    return tr;
  }));
  fill("digests", o.digests_by_day.slice().reverse().map((d) => {
    const tr = document.createElement("tr");
    tr.append(cell(d.date), cell(d.sent, "num"), cell(d.failed, "num"), cell(d.dead, "num"));
    return tr;
  }));
}

async function showNotifications() {
  const page = await json("/notifications?limit=20&newest_first=true");
  fill("notifications", page.items.map((n) => {
    const tr = document.createElement("tr");
    const about = n.campaign ? "campaign " + n.campaign.name : n.subject;
    tr.append(cell(when(n.created_at)), cell(n.kind), cell(about), cell(n.message));
    return tr;
  }));
}

// --- tabs -----------------------------------------------------------------------------------

function showTab(name) {
  say("");
  for (const b of document.querySelectorAll("#tabs button")) {
    if (b.dataset.tab === name) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  $("tab-overview").hidden = name !== "overview";
  $("tab-new-campaign").hidden = name !== "new-campaign";
  $("tab-till").hidden = name !== "till";
  $("tab-lookup").hidden = name !== "lookup";
  $("tab-customers").hidden = name !== "customers";
  $("tab-catalogue").hidden = name !== "catalogue";
  $("tab-people").hidden = name !== "people";
  $("tab-settings").hidden = name !== "settings";
  if (!token) return;
  if (name === "catalogue") showCatalogue();
  if (name === "people") showPeople();
  if (name === "settings") showSettings();
  // Back on the overview, its figures (and the open campaign's) as they are now.
  if (name === "overview") refresh().then(() => current && openCampaign(current));
  if (name === "new-campaign" && !$("nc-starts").value) campaignDefaults();
  if (name === "till" && !$("till-lines").querySelector("tbody tr")) addTillLine();
}

// --- amounts and lists as people type them -----------------------------------------------------

/** "12.50" → 1250; empty → null. */
function cents(id) {
  const v = $(id).value.trim();
  if (v === "") return null;
  const n = Number(v.replace(",", "."));
  if (!Number.isFinite(n) || n < 0) throw new Error($(id).closest("label").firstChild.textContent.trim() + ": not an amount");
  return Math.round(n * 100);
}

function whole(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

function text(id) {
  const v = $(id).value.trim();
  return v === "" ? null : v;
}

/** "a, b,c" → ["a", "b", "c"]. */
function list(id) {
  return $(id).value.split(/[,\n]/).map((x) => x.trim()).filter((x) => x !== "");
}

/** "9-11, 18" → [9, 10, 11, 18]. */
function hours(id) {
  const out = new Set();
  for (const part of list(id)) {
    const m = /^(\d{1,2})(?:\s*-\s*(\d{1,2}))?$/.exec(part);
    if (!m) throw new Error("Hours: write them as 9-17 or 8,12,18");
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from > 23 || to > 23 || to < from) throw new Error("Hours: each is 0 to 23, ranges low to high");
    for (let h = from; h <= to; h++) out.add(h);
  }
  return [...out];
}

/** A datetime-local field (the browser's own time) as an instant. */
function instant(id) {
  const v = $(id).value;
  if (!v) throw new Error("Give a date and time");
  return new Date(v).toISOString();
}

/** An instant as a datetime-local value in the browser's time. */
function localInput(t) {
  const d = new Date(t);
  const pad = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
}


// --- a new campaign ---------------------------------------------------------------------------

function campaignDefaults() {
  const now = new Date();
  now.setSeconds(0, 0);
  $("nc-starts").value = localInput(now);
  $("nc-ends").value = localInput(now.getTime() + 7 * 86400000);
  $("nc-timezone").value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function codeSpec() {
  const spec = { pattern: $("nc-pattern").value.trim(), charset: $("nc-charset").value };
  if (text("nc-prefix")) spec.prefix = text("nc-prefix");
  if (text("nc-postfix")) spec.postfix = text("nc-postfix");
  return spec;
}

async function previewCodes() {
  try {
    const p = await (await api("POST", "/code-previews", codeSpec())).json();
    $("nc-samples").replaceChildren(...p.samples.map((code) => {
      const li = document.createElement("li");
      li.textContent = code;
      return li;
    }));
    const note = document.createElement("li");
    note.className = "muted";
    note.textContent = "(" + p.possible_codes.toLocaleString() + " possible codes)";
    $("nc-samples").append(note);
  } catch (e) {
    if (!(e instanceof SignedOut)) say("That pattern cannot be used: " + e.message, true);
  }
}

function addBudgetRow() {
  const body = $("nc-budgets").querySelector("tbody");
  if (body.children.length >= 10) return;
  const tr = document.createElement("tr");
  const select = (name, options) => {
    const s = document.createElement("select");
    s.className = name;
    s.setAttribute("aria-label", name.replace("budget-", "budget "));
    for (const [value, label] of options) s.append(new Option(label, value));
    return s;
  };
  const limit = document.createElement("input");
  limit.type = "number";
  limit.min = "0.01";
  limit.step = "0.01";
  limit.required = true;
  limit.className = "budget-limit";
  limit.setAttribute("aria-label", "budget limit");
  tr.append(
    cell(select("budget-measure", [["discount_cents", "discount given"], ["redemptions", "redemptions"]])),
    cell(limit),
    cell(select("budget-period", [["total", "whole campaign"], ["day", "day"], ["week", "week"], ["month", "month"]])),
    cell(select("budget-per", [["campaign", "everyone together"], ["customer", "each customer"]])),
    cell(button("Remove", "remove", () => tr.remove())),
  );
  body.append(tr);
}

function budgets() {
  return [...$("nc-budgets").querySelectorAll("tbody tr")].map((tr) => {
    const measure = tr.querySelector(".budget-measure").value;
    const raw = Number(tr.querySelector(".budget-limit").value);
    if (!(raw > 0)) throw new Error("Budgets: give each a limit");
    return {
      measure,
      limit: measure === "discount_cents" ? Math.round(raw * 100) : Math.round(raw),
      period: tr.querySelector(".budget-period").value,
      per: tr.querySelector(".budget-per").value,
    };
  });
}

function newCampaignBody() {
  const kind = $("nc-kind").value;
  const body = {
    name: $("nc-name").value.trim(),
    kind,
    code_mode: $("nc-mode").value,
    pool_size: whole("nc-pool"),
    starts_at: instant("nc-starts"),
    ends_at: instant("nc-ends"),
    per_customer_limit: whole("nc-limit") || 1,
    code: codeSpec(),
  };
  if (kind === "gift_card") {
    body.gift_balance_cents = cents("nc-gift");
  } else if ($("nc-discount-type").value === "percent") {
    body.discount = { percent: whole("nc-percent") };
    if (cents("nc-max") !== null) body.discount.max_cents = cents("nc-max");
  } else {
    body.discount = { amount_cents: cents("nc-amount"), currency: (text("nc-currency") || "").toUpperCase() };
  }
  if (cents("nc-price") !== null) body.price_cents = cents("nc-price");
  for (const [field, id] of [["timezone", "nc-timezone"], ["retailer", "nc-retailer"], ["category", "nc-category"]]) {
    if (text(id)) body[field] = text(id);
  }
  if (whole("nc-validity") !== null) {
    body.validity_days_after_claim = whole("nc-validity");
    body.expire_at_local_end_of_day = $("nc-local-midnight").checked;
  }
  const rules = {};
  if (cents("nc-min-order") !== null) rules.min_order_cents = cents("nc-min-order");
  if (whole("nc-min-items") !== null) rules.min_items = whole("nc-min-items");
  if (text("nc-rule-currency")) rules.currency = text("nc-rule-currency").toUpperCase();
  for (const [field, inc, exc] of [["categories", "nc-cat-in", "nc-cat-out"], ["retailers", "nc-ret-in", "nc-ret-out"], ["skus", "nc-sku-in", "nc-sku-out"]]) {
    const scope = { include: list(inc), exclude: list(exc) };
    if (scope.include.length || scope.exclude.length) rules[field] = scope;
  }
  const weekdays = [...document.querySelectorAll("input[name=weekday]:checked")].map((i) => i.value);
  if (weekdays.length) rules.weekdays = weekdays;
  const hs = hours("nc-hours");
  if (hs.length) rules.hours = hs;
  if (Object.keys(rules).length) body.rules = rules;
  const bs = budgets();
  if (bs.length) body.budgets = bs;
  return body;
}

async function createCampaign(event) {
  event.preventDefault();
  let body;
  try {
    body = newCampaignBody();
  } catch (e) {
    say(e.message, true);
    return;
  }
  $("nc-create").disabled = true;
  try {
    const c = await (await api("POST", "/campaigns", body)).json();
    $("campaign-form").reset();
    $("nc-budgets").querySelector("tbody").replaceChildren();
    $("nc-samples").replaceChildren();
    current = c;
    showTab("overview");
    say("Created " + c.name + ": give it codes to start it.");
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not create the campaign: " + e.message, true);
  } finally {
    $("nc-create").disabled = false;
  }
}

// --- one campaign's tools ---------------------------------------------------------------------

function showTools(c) {
  current = c;
  const ended = c.status === "ended";
  $("campaign-tools").hidden = false;
  $("pause-button").textContent = c.paused_at ? "Resume" : "Pause";
  $("pause-button").hidden = ended;
  for (const id of ["generate-form", "import-form", "edit-form", "distribute-form"]) $(id).hidden = ended;
  $("edit-name").value = c.name;
  $("edit-ends").value = localInput(c.ends_at);
  $("edit-limit").value = c.per_customer_limit;
  $("gen-count").max = String(Math.max(1, c.pool_size - c.codes_total));
}

/** The open campaign again, as the API shows it now, with the overview. */
async function reopen() {
  await refresh();
  await openCampaign(current);
}

async function campaignAction(what, run) {
  if (!current) return;
  try {
    const message = await run(encodeURIComponent(current.id));
    await reopen();
    say(message);
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not " + what + ": " + e.message, true);
  }
}

async function generate(event) {
  event.preventDefault();
  const count = whole("gen-count");
  $("gen-button").disabled = true;
  await campaignAction("generate codes", async (id) => {
    const r = await (await api("POST", "/campaigns/" + id + "/codes", { count })).json();
    return r.added + " codes generated; " + r.codes_total + " in all.";
  });
  $("gen-button").disabled = false;
}

async function importCodes(event) {
  event.preventDefault();
  const file = $("import-file").files[0];
  if (!file) return;
  const usage = whole("import-usage");
  $("import-button").disabled = true;
  say("Importing " + file.name + "…");
  await campaignAction("import " + file.name, async (id) => {
    const query = usage ? "?usage_limit=" + usage : "";
    const r = await (await api("POST", "/campaigns/" + id + "/codes" + query, file, { contentType: "text/csv" })).json();
    $("import-form").reset();
    return r.added + " codes imported from " + file.name + "; " + r.codes_total + " in all.";
  });
  $("import-button").disabled = false;
}

async function downloadCodes() {
  if (!current) return;
  try {
    const blob = await (await api("GET", "/campaigns/" + encodeURIComponent(current.id) + "/codes", undefined, { accept: "text/csv" })).blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = current.name.replace(/[^A-Za-z0-9_-]+/g, "-") + "-codes.csv";
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    say("Downloaded the codes of " + current.name + ".");
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not download the codes: " + e.message, true);
  }
}

async function pauseOrResume() {
  const verb = current && current.paused_at ? "resume" : "pause";
  await campaignAction(verb + " the campaign", async (id) => {
    await api("POST", "/campaigns/" + id + "/" + verb);
    return (verb === "pause" ? "Paused " : "Resumed ") + current.name + ".";
  });
}

async function edit(event) {
  event.preventDefault();
  let body;
  try {
    body = { name: $("edit-name").value.trim(), ends_at: instant("edit-ends"), per_customer_limit: whole("edit-limit") };
  } catch (e) {
    say(e.message, true);
    return;
  }
  await campaignAction("save the campaign", async (id) => {
    await api("PATCH", "/campaigns/" + id, body);
    return "Saved " + body.name + ".";
  });
}

function audienceChanged() {
  const a = $("dist-audience").value;
  $("dist-emails-label").hidden = a !== "emails";
  $("dist-target-label").hidden = a === "emails";
  $("dist-webhook-label").hidden = $("dist-channel").value !== "webhook";
}

function describeAudience(d) {
  if (d.audience === "customers") return "listed customers";
  const t = d.audience.subscribers_of;
  return t ? "followers of " + (t.retailer ? "retailer " + t.retailer : "category " + t.category) : "–";
}

/** Recipients a distribution passed over, for any reason. */
const skippedOf = (d) => (d.skipped_limit_reached || 0) + (d.skipped_sold_out || 0) + (d.skipped_other || 0) + (d.skipped_unreachable || 0);

function progressLine(d) {
  const skipped = skippedOf(d);
  return d.done + " of " + d.recipients + " handled, " + d.assigned + " codes sent, " + skipped + " skipped · " + d.status;
}

async function distribute(event) {
  event.preventDefault();
  if (!current) return;
  const body = { channel: $("dist-channel").value };
  const a = $("dist-audience").value;
  if (a === "emails") {
    body.emails = list("dist-emails");
  } else {
    body.subscribers_of = { [a]: $("dist-target").value.trim() };
  }
  if (body.channel === "webhook") body.webhook = $("dist-webhook").value.trim();
  const campaign = current;
  const id = encodeURIComponent(campaign.id);
  $("dist-button").disabled = true;
  try {
    let d = await (await api("POST", "/campaigns/" + id + "/distributions", body)).json();
    $("dist-progress").textContent = progressLine(d);
    // Live progress: read it again until every recipient was handled.
    for (let i = 0; d.status !== "completed" && i < 600; i++) {
      await new Promise((r) => setTimeout(r, 500));
      d = await json("/campaigns/" + id + "/distributions/" + encodeURIComponent(d.id));
      $("dist-progress").textContent = progressLine(d);
    }
    if (current && current.id === campaign.id) await reopen();
    $("dist-progress").textContent = progressLine(d);
    say("Sent " + d.assigned + " codes of " + campaign.name + ".");
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not send codes: " + e.message, true);
  } finally {
    $("dist-button").disabled = false;
  }
}

async function showDistributions(c) {
  const page = await json("/campaigns/" + encodeURIComponent(c.id) + "/distributions?limit=20");
  fill("distributions", page.items.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.distributionId = d.id;
    const skipped = skippedOf(d);
    tr.append(cell(when(d.created_at)), cell(describeAudience(d)), cell(d.channel), cell(d.recipients, "num"),
      cell(d.assigned, "num"), cell(skipped, "num"), cell(d.status, "status status-" + d.status));
    return tr;
  }));
}

/** A sold campaign's orders waiting for their payment, each with a button confirming it. */
async function showUnpaidOrders(c) {
  const sold = c.kind === "gift_card" || (c.price_cents || 0) > 0;
  $("unpaid-orders-part").hidden = !sold;
  if (!sold) return;
  const page = await json("/orders?status=pending_payment&limit=500&campaign=" + encodeURIComponent(c.id));
  fill("unpaid-orders", page.items.map((o) => {
    const tr = document.createElement("tr");
    tr.dataset.order = o.id;
    const confirm = button("Confirm payment", "confirm-payment", async () => {
      if (!confirm.dataset.armed) {
        // A second click confirms: the codes become the customer's, paid or not.
        confirm.dataset.armed = "1";
        confirm.textContent = "Paid " + money(o.amount_cents) + "? Click again";
        return;
      }
      confirm.disabled = true;
      try {
        const paid = await (await api("POST", "/orders/" + encodeURIComponent(o.id) + "/payment")).json();
        say("Payment confirmed: " + paid.codes.length + " codes are the customer's now.");
        await openCampaign(c);
      } catch (e) {
        if (!(e instanceof SignedOut)) say("Could not confirm the payment: " + e.message, true);
        confirm.disabled = false;
      }
    });
    tr.append(cell(when(o.created_at)), cell(o.customer, "code"), cell(o.quantity, "num"),
      cell(money(o.amount_cents), "num"), cell(when(o.pay_by)), cell(confirm));
    return tr;
  }));
}

// --- the till ---------------------------------------------------------------------------------

function addTillLine() {
  const body = $("till-lines").querySelector("tbody");
  if (body.children.length >= 100) return;
  const tr = document.createElement("tr");
  const input = (name, label, type) => {
    const i = document.createElement("input");
    i.className = name;
    i.setAttribute("aria-label", label);
    if (type === "number") {
      i.type = "number";
      i.min = name === "line-quantity" ? "1" : "0";
      if (name === "line-price") i.step = "0.01";
    }
    return i;
  };
  const quantity = input("line-quantity", "quantity", "number");
  quantity.value = "1";
  tr.append(
    cell(input("line-sku", "SKU")),
    cell(input("line-category", "category")),
    cell(input("line-retailer", "retailer")),
    cell(quantity, "num"),
    cell(input("line-price", "unit price", "number"), "num"),
    cell(button("Remove", "remove", () => tr.remove())),
  );
  body.append(tr);
}

function tillOrder() {
  const items = [...$("till-lines").querySelectorAll("tbody tr")].map((tr) => {
    const value = (c) => tr.querySelector(c).value.trim();
    const price = Number(value(".line-price").replace(",", "."));
    if (value(".line-price") === "" || !Number.isFinite(price) || price < 0) throw new Error("Each line needs a unit price");
    const line = { quantity: Number(value(".line-quantity")) || 1, price_cents: Math.round(price * 100) };
    for (const [field, c] of [["sku", ".line-sku"], ["category", ".line-category"], ["retailer", ".line-retailer"]]) {
      if (value(c)) line[field] = value(c);
    }
    return line;
  });
  if (items.length === 0) throw new Error("Add the order's lines");
  return { currency: $("till-currency").value.trim().toUpperCase(), items };
}

function tillCustomer(body) {
  const who = text("till-customer");
  if (!who) return body;
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(who)) body.customer = who;
  else body.customer_ref = who;
  return body;
}

/** The codes typed at the till: one, or a cart's several separated by spaces or commas. */
function tillCodes() {
  const codes = $("till-code").value.split(/[\s,;]+/).filter((c) => c !== "");
  if (codes.length === 0) throw new Error("Type a code");
  return codes;
}

/** The redemptions of the last cart redeemed (what "Roll back" undoes). */
let lastRedemptions = [];

function showOutcome(heading, rows, totals) {
  const h = document.createElement("h3");
  h.textContent = heading;
  const table = document.createElement("table");
  const head = document.createElement("thead");
  head.innerHTML = "<tr><th>Code</th><th>Result</th><th class=\"num\">Discount</th><th>Why not</th></tr>";
  const tbody = document.createElement("tbody");
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.append(cell(r.code), cell(r.status, "status status-" + r.status), cell(money(r.discount_cents), "num"), cell(r.reason ? reasonText(r.reason) : ""));
    tbody.append(tr);
  }
  table.append(head, tbody);
  const p = document.createElement("p");
  p.id = "till-totals";
  p.textContent = "Order " + money(totals.amount_cents) + ", discount " + money(totals.discount_cents) + ", to pay " + money(totals.total_cents);
  $("till-result").replaceChildren(h, table, p);
}

const REASONS = {
  not_found: "no such code", not_started: "the campaign has not started", expired: "expired", ended: "the campaign has ended",
  paused: "the campaign is paused", disabled: "the code is disabled", not_held: "nobody holds this code yet",
  redeemed: "already used", spent: "no balance left", usage_limit_reached: "used as often as it may be",
  customer_limit_reached: "this customer has used it as often as they may", customer_required: "say who the customer is",
  budget_exhausted: "the campaign's budget is spent", min_order_not_met: "the order is below the minimum",
  min_items_not_met: "too few items", no_matching_items: "no line of the order qualifies", currency_mismatch: "another currency",
  outside_hours: "not at this hour", outside_weekdays: "not on this day",
};
const reasonText = (r) => REASONS[r] || r;

async function validateAtTill(event) {
  event.preventDefault();
  $("till-rollback").hidden = true;
  // Nothing of the last answer stays beside this one.
  say("");
  $("till-result").replaceChildren();
  try {
    const codes = tillCodes();
    const body = tillCustomer({ codes, order: tillOrder() });
    const v = await (await api("POST", "/validations", body)).json();
    const one = codes.length === 1;
    const heading = v.valid ? (one ? "The code applies" : "The codes apply")
      : (one ? "The code does not apply" : "Not every code applies");
    showOutcome(heading, v.redeemables, v.order);
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not check: " + e.message, true);
  }
}

async function redeemAtTill() {
  $("till-rollback").hidden = true;
  say("");
  let body;
  try {
    body = tillCustomer({ codes: tillCodes(), order: tillOrder() });
  } catch (e) {
    say(e.message, true);
    return;
  }
  $("till-redeem").disabled = true;
  try {
    const r = await (await api("POST", "/redemptions", body)).json();
    lastRedemptions = r.redemptions;
    showOutcome("Redeemed", r.redeemables.map((x) => ({ ...x, status: "applied" })), r.order);
    $("till-rollback").hidden = false;
    say("Redeemed " + r.redemptions.map((x) => x.code).join(", ") + ": " + money(r.order.discount_cents) + " off.");
  } catch (e) {
    if (!(e instanceof SignedOut)) {
      $("till-result").replaceChildren();
      say("Not redeemed: " + e.message, true);
    }
  } finally {
    $("till-redeem").disabled = false;
  }
}

async function rollBack() {
  if (lastRedemptions.length === 0) return;
  const undone = [];
  try {
    for (const r of lastRedemptions) {
      await api("POST", "/redemptions/" + encodeURIComponent(r.id) + "/rollback");
      undone.push(r.code);
    }
    say("Rolled back the redemption of " + undone.join(", ") + ": " + (undone.length === 1 ? "it" : "they") + " can be used again.");
    $("till-rollback").hidden = true;
    $("till-result").replaceChildren();
    lastRedemptions = [];
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not roll back: " + e.message, true);
  }
}

// --- looking up a code ------------------------------------------------------------------------

let looked = null;

async function lookUp(event) {
  event && event.preventDefault();
  const code = $("lookup-code").value.trim();
  // Nothing of the last code stays to be acted on while this one is read.
  looked = null;
  $("lookup-toggle").hidden = true;
  $("lookup-result").replaceChildren();
  try {
    const c = await json("/codes/" + encodeURIComponent(code));
    looked = c;
    const rows = [
      ["Code", c.code], ["Campaign", c.campaign], ["State", c.disabled ? c.status + " (disabled)" : c.status],
      ["Holder", c.holder], ["Claimed", when(c.claimed_at)], ["Valid from", when(c.valid_from)],
      ["Valid until", when(c.valid_until)], ["Balance", c.balance_cents === null ? null : money(c.balance_cents)],
    ];
    $("lookup-result").replaceChildren(...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v === null || v === undefined ? "–" : String(v);
      return [dt, dd];
    }));
    $("lookup-toggle").textContent = c.disabled ? "Enable this code" : "Disable this code";
    $("lookup-toggle").hidden = false;
  } catch (e) {
    $("lookup-result").replaceChildren();
    if (!(e instanceof SignedOut)) say(e.status === 404 ? "No code " + code + "." : "Could not look it up: " + e.message, true);
  }
}

async function toggleCode() {
  if (!looked) return;
  try {
    await api("PATCH", "/codes/" + encodeURIComponent(looked.code), { disabled: !looked.disabled });
    say((looked.disabled ? "Enabled " : "Disabled ") + looked.code + ".");
    await lookUp();
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not change the code: " + e.message, true);
  }
}

// --- customers --------------------------------------------------------------------------------

let customer = null;

async function findCustomer(event) {
  event && event.preventDefault();
  const q = $("customer-query").value.trim();
  const param = q.startsWith("+") ? "phone=" : "email=";
  try {
    const page = await json("/users?" + param + encodeURIComponent(q));
    if (page.items.length === 0) {
      $("customer-detail").hidden = true;
      say("No customer " + q + ".", true);
      return;
    }
    customer = page.items[0];
    await showCustomer();
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not find " + q + ": " + e.message, true);
  }
}

async function showCustomer() {
  const c = customer;
  const id = encodeURIComponent(c.id);
  $("customer-title").textContent = c.email;
  const facts = [
    ["Role", c.role], ["Phone", c.phone], ["Timezone", c.timezone],
    ["Digest", c.digest_frequency === "off" ? "off" : c.digest_frequency + " at " + c.digest_hour + ":00"],
    ["Codes by email", c.marketing_emails ? "yes" : "no (opted out)"], ["Since", when(c.created_at)],
  ];
  $("customer-facts").replaceChildren(...facts.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v === null || v === undefined ? "–" : String(v);
    return [dt, dd];
  }));
  $("customer-preview").textContent = "";
  const wallet = await json("/wallet?customer=" + id);
  fill("customer-codes", wallet.items.map((h) => {
    const tr = document.createElement("tr");
    tr.append(cell(h.code), cell(h.campaign), cell(h.status, "status status-" + h.status), cell(when(h.claimed_at)), cell(when(h.valid_until)));
    return tr;
  }));
  if (myRole === "admin") {
    const [follows, digests] = await Promise.all([
      json("/users/" + id + "/subscriptions?limit=100"),
      json("/users/" + id + "/digests?limit=20"),
    ]);
    fill("customer-follows", follows.items.map((f) => {
      const tr = document.createElement("tr");
      tr.append(cell(f.retailer ? "retailer " + f.retailer : "category " + f.category), cell(when(f.created_at)));
      return tr;
    }));
    fill("customer-digests", digests.items.map((d) => {
      const tr = document.createElement("tr");
      tr.append(cell(d.local_date), cell(d.status, "status status-" + d.status), cell(d.voucher_ids.length + d.more, "num"), cell(when(d.sent_at)));
      return tr;
    }));
  }
  $("customer-detail").hidden = false;
}

async function previewDigest() {
  if (!customer) return;
  try {
    const p = await json("/users/" + encodeURIComponent(customer.id) + "/digest/preview");
    const titles = p.vouchers.map((v) => v.retailer + ": " + v.title);
    $("customer-preview").textContent = p.due_at === null
      ? "Digests are off for this customer."
      : "Next digest (" + p.local_date + ", due " + when(p.due_at) + "): " +
        (titles.length ? titles.join(" · ") + (p.more ? " and " + p.more + " more" : "") : "nothing new yet");
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not preview the digest: " + e.message, true);
  }
}

async function runDigests(userId) {
  try {
    const r = await (await api("POST", "/admin/digests/run", userId ? { user_id: userId } : {})).json();
    say(r.sent + " digests sent now, " + r.skipped + " skipped (already sent, nothing new, or off).");
    if (customer && userId) await showCustomer();
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not send digests: " + e.message, true);
  }
}

async function eraseCustomer() {
  const b = $("customer-erase");
  if (!customer) return;
  if (!b.dataset.armed) {
    b.dataset.armed = "1";
    b.textContent = "Really erase " + customer.email + " and their data?";
    return;
  }
  delete b.dataset.armed;
  b.textContent = "Erase this customer";
  try {
    await api("DELETE", "/users/" + encodeURIComponent(customer.id));
    say("Erased " + customer.email + ".");
    customer = null;
    $("customer-detail").hidden = true;
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not erase: " + e.message, true);
  }
}

// --- the catalogue ----------------------------------------------------------------------------

let namesLoaded = false;

async function showCatalogue(event) {
  event && event.preventDefault();
  try {
    if (!namesLoaded) {
      const [retailers, categories] = await Promise.all([json("/retailers?limit=500"), json("/categories?limit=500")]);
      $("cat-retailer-names").replaceChildren(...retailers.items.map((n) => new Option(n.name + " (" + n.active_vouchers + ")", n.name)));
      $("cat-category-names").replaceChildren(...categories.items.map((n) => new Option(n.name + " (" + n.active_vouchers + ")", n.name)));
      namesLoaded = true;
    }
    const q = new URLSearchParams({ limit: "100" });
    for (const [k, id] of [["q", "cat-q"], ["retailer", "cat-retailer"], ["category", "cat-category"]]) {
      if (text(id)) q.set(k, text(id));
    }
    if ($("cat-upcoming").checked) q.set("active", "false");
    const page = await json("/vouchers?" + q.toString());
    fill("catalogue", page.items.map((v) => {
      const tr = document.createElement("tr");
      tr.append(cell(v.retailer), cell(v.category), cell(v.title), cell(v.code_is_pattern ? "(pattern)" : v.code), cell(v.network), cell(when(v.ends_at)));
      return tr;
    }));
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not read the catalogue: " + e.message, true);
  }
}

// --- people and API keys (admins) -------------------------------------------------------------

async function showPeople() {
  try {
    const [users, keys] = await Promise.all([json("/users?limit=500"), json("/api-keys")]);
    fill("users", users.items.map((u) => {
      const tr = document.createElement("tr");
      tr.dataset.email = u.email;
      const role = document.createElement("select");
      role.setAttribute("aria-label", "role of " + u.email);
      for (const r of ["customer", "manager", "admin"]) role.append(new Option(r, r, false, r === u.role));
      role.addEventListener("change", async () => {
        try {
          await api("PUT", "/users/" + encodeURIComponent(u.id) + "/role", { role: role.value });
          say(u.email + " is " + role.value + " now.");
        } catch (e) {
          if (!(e instanceof SignedOut)) say("Could not change the role of " + u.email + ": " + e.message, true);
          role.value = u.role;
        }
      });
      tr.append(cell(u.email), cell(u.role, "role"), cell(when(u.created_at)), cell(role));
      return tr;
    }));
    fill("api-keys", keys.items.map((k) => {
      const tr = document.createElement("tr");
      tr.dataset.keyName = k.name;
      tr.append(cell(k.name), cell(k.role), cell(when(k.created_at)), cell(when(k.expires_at)), cell(when(k.last_used_at)),
        cell(button("Revoke", "revoke danger", async () => {
          try {
            await api("DELETE", "/api-keys/" + encodeURIComponent(k.id));
            say("Revoked the key " + k.name + ".");
            await showPeople();
          } catch (e) {
            if (!(e instanceof SignedOut)) say("Could not revoke " + k.name + ": " + e.message, true);
          }
        })));
      return tr;
    }));
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not read users and keys: " + e.message, true);
  }
}

async function makeKey(event) {
  event.preventDefault();
  const body = { name: $("key-name").value.trim(), role: $("key-role").value };
  try {
    if ($("key-expires").value) body.expires_at = instant("key-expires");
    const k = await (await api("POST", "/api-keys", body)).json();
    $("key-value").textContent = k.key;
    $("key-made").hidden = false;
    $("key-form").reset();
    say("Made the key " + k.name + ".");
    await showPeople();
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not make the key: " + e.message, true);
  }
}

// --- settings (admins) ------------------------------------------------------------------------

async function showSettings() {
  try {
    $("settings-text").textContent = await (await api("GET", "/admin/settings")).text();
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not read the settings: " + e.message, true);
  }
}

// Figures move on their own (claims, sends): read them again every 30 s while the tab is shown.
setInterval(() => {
  if (token && !$("dashboard").hidden && document.visibilityState === "visible") refresh();
}, 30000);

document.addEventListener("DOMContentLoaded", async () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("refresh").addEventListener("click", refresh);
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("campaign-form").addEventListener("submit", createCampaign);
  $("nc-preview").addEventListener("click", previewCodes);
  $("nc-add-budget").addEventListener("click", addBudgetRow);
  $("generate-form").addEventListener("submit", generate);
  $("import-form").addEventListener("submit", importCodes);
  $("download-button").addEventListener("click", downloadCodes);
  $("pause-button").addEventListener("click", pauseOrResume);
  $("edit-form").addEventListener("submit", edit);
  $("distribute-form").addEventListener("submit", distribute);
  $("dist-audience").addEventListener("change", audienceChanged);
  $("dist-channel").addEventListener("change", audienceChanged);
  $("till-form").addEventListener("submit", validateAtTill);
  $("till-add-line").addEventListener("click", addTillLine);
  $("till-redeem").addEventListener("click", redeemAtTill);
  $("till-rollback").addEventListener("click", rollBack);
  $("lookup-form").addEventListener("submit", lookUp);
  $("lookup-toggle").addEventListener("click", toggleCode);
  $("customer-form").addEventListener("submit", findCustomer);
  $("customer-preview-button").addEventListener("click", previewDigest);
  $("customer-digest-button").addEventListener("click", () => customer && runDigests(customer.id));
  $("customer-erase").addEventListener("click", eraseCustomer);
  $("digest-run-form").addEventListener("submit", (e) => {
    e.preventDefault();
    runDigests(null);
  });
  $("catalogue-form").addEventListener("submit", showCatalogue);
  $("key-form").addEventListener("submit", makeKey);
  if (token) {
    try {
      show(await json("/users/me"));
    } catch (_) {
      signOut();
    }
  }
});
