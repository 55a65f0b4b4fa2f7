// voucherd dashboard: signs in through the API and reads everything with the token it gets.
// Every value from the server goes into the page as text (textContent), never as markup.
"use strict";

const TOKEN_KEY = "voucherd-token";
// Set when the token came from signing in here (a session token this page may revoke).
const OWN_KEY = "voucherd-own-token";
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY);

function say(text, isError) {
  const m = $("message");
  m.textContent = text || "";
  m.className = isError ? "error" : "";
}

class SignedOut extends Error {}

/// Calls the API with the token; a problem+json answer becomes an Error with its detail.
async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + token };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch("/api/v1" + path, init);
  if (res.status === 401) {
    signOut("Your session has ended: sign in again.");
    throw new SignedOut();
  }
  if (!res.ok) {
    let detail = res.status + " " + res.statusText;
    try {
      const p = await res.json();
      detail = p.detail || p.title || detail;
    } catch (_) {
      // not problem+json: keep the status line
    }
    const e = new Error(detail);
    e.status = res.status;
    throw e;
  }
  return res;
}

const json = async (path) => (await api("GET", path)).json();

function cell(content, className) {
  const td = document.createElement("td");
  if (content instanceof Node) {
    td.append(content);
  } else {
    td.textContent = content === null || content === undefined ? "–" : String(content);
  }
  if (className) td.className = className;
  return td;
}

function fill(tableId, rows) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell("none");
    td.colSpan = $(tableId).querySelectorAll("thead th").length;
    td.className = "empty";
    tr.append(td);
    body.append(tr);
  }
}

function button(label, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

const when = (t) => (t ? new Date(t).toLocaleString() : "–");
const percent = (num, den) => (den > 0 ? ((100 * num) / den).toFixed(1) + " %" : "–");

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
  $("sign-in").hidden = false;
  $("sign-out").hidden = true;
  $("refresh").hidden = true;
  $("who").textContent = "";
  say(typeof why === "string" ? why : "");
}

function show(me) {
  $("who").textContent = me.email + " (" + me.role + ")";
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
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
    actions.append(button("Chart", "chart", () => openCampaign(c)));
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

async function openCampaign(c) {
  const id = encodeURIComponent(c.id);
  try {
    const [report, chart] = await Promise.all([
      json("/reports/campaigns/" + id),
      api("GET", "/reports/campaigns/" + id + "/chart.svg").then((r) => r.blob()),
    ]);
    $("detail-title").textContent = c.name;
    const money = (report.discount_cents_total / 100).toFixed(2);
    $("detail-figures").textContent =
      report.codes_total + " codes, " + report.claimed + " claimed, " + report.redeemed + " redeemed (" +
      percent(report.redeemed, report.claimed) + "), discount given " + money + " · days in " + c.timezone;
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
  } catch (e) {
    if (!(e instanceof SignedOut)) say("Could not load the report of " + c.name + ": " + e.message, true);
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
  const page = await json("/notifications?limit=20");
  fill("notifications", page.items.map((n) => {
    const tr = document.createElement("tr");
    tr.append(cell(when(n.created_at)), cell(n.kind), cell(n.subject), cell(n.message));
    return tr;
  }));
}

// Figures move on their own (claims, sends): read them again every 30 s while the tab is shown.
setInterval(() => {
  if (token && !$("dashboard").hidden && document.visibilityState === "visible") refresh();
}, 30000);

document.addEventListener("DOMContentLoaded", async () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("refresh").addEventListener("click", refresh);
  if (token) {
    try {
      show(await json("/users/me"));
    } catch (_) {
      signOut();
    }
  }
});
