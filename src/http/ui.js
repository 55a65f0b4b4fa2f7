// voucherd pages: what the console and the customer page share. Every value from the server goes
// into a page as text (textContent), never as markup.
"use strict";

const $ = (id) => document.getElementById(id);

function say(text, isError) {
  const m = $("message");
  m.textContent = text || "";
  m.className = isError ? "error" : "";
}

/** Thrown once the session has ended (the page has signed out). */
class SignedOut extends Error {}

/// Calls the API with `token`; a 401 calls `signedOut` and throws SignedOut; a problem+json answer becomes an Error with its detail.
/// A file (Blob) goes as it is, with `contentType`; anything else as JSON.
async function request(token, signedOut, method, path, body, { contentType, accept } = {}) {
  const headers = { Authorization: "Bearer " + token };
  const init = { method, headers };
  if (accept) headers.Accept = accept;
  if (body instanceof Blob) {
    headers["Content-Type"] = contentType;
    init.body = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch("/api/v1" + path, init);
  if (res.status === 401) {
    signedOut();
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

/** A table cell: a node, or a value as text ("–" for none). */
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

/** A table's rows, or one "none" row. */
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
/** Minor units as an amount: 1250 → "12.50". */
const money = (c) => (c === null || c === undefined ? "–" : (c / 100).toFixed(2));
