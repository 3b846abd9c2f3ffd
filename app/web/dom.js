// Small DOM and formatting helpers shared by the page's modules. Data from the service only ever enters
// the page as text (textContent), never as HTML.

import { isApiError } from "./api.js";
import { language, t } from "./i18n.js";

export const $ = (id) => document.getElementById(id);

export function el(tag, { cls, text, attrs } = {}, ...children) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children) if (child) node.append(child);
  return node;
}

/** Put ``rows`` in the table with this id under a head naming ``columns`` (label keys): a table's columns are
 * named where its cells are made. */
export function fillTable(id, columns, rows) {
  const head = el("tr", {}, ...columns.map((key) => el("th", { text: t(key), attrs: { "data-i18n": key } })));
  $(id).tHead.replaceChildren(head);
  $(id).tBodies[0].replaceChildren(...rows);
}

export function show(node, visible) {
  node.hidden = !visible;
}

/** Put ``text`` in the element with this id and show it (an error or notice line). */
export function say(id, text) {
  const node = $(id);
  node.textContent = text;
  node.hidden = false;
}

/** The trimmed text of the field with this id; when it is empty, ``message`` in the error line ``errorId`` and
 * null. */
export function filledIn(fieldId, errorId, message) {
  const value = $(fieldId).value.trim();
  if (!value) say(errorId, message);
  return value || null;
}

/** Sign in from the staff token form (partials/token-field.html); a pasted "Bearer …" header works too. */
export function onTokenSubmit(signIn, t) {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = filledIn("token-input", "login-error", t("token_empty"));
    if (token) signIn(token.replace(/^Bearer\s+/i, ""));
  });
}

export function formatTime(iso, opts = { dateStyle: "medium", timeStyle: "short" }) {
  if (!iso) return t("none");
  return new Intl.DateTimeFormat(language(), opts).format(new Date(iso));
}

export function shortTime(iso) {
  return formatTime(iso, { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

/** "12 min ago", "3 h 5 min ago", "2 d ago" (or "in 5 min" for a time ahead). */
export function age(iso, now = Date.now()) {
  const minutes = Math.round((now - Date.parse(iso)) / 60000);
  if (minutes < 0) {
    return -minutes < 120 ? t("in_future", { n: -minutes }) : t("in_h", { n: Math.round(-minutes / 60) });
  }
  if (minutes < 1) return t("just_now");
  if (minutes < 60) return t("min_ago", { n: minutes });
  if (minutes < 6 * 60) {
    const h = Math.floor(minutes / 60);
    const m = minutes % 60;
    return m ? t("h_min_ago", { h, m }) : t("h_ago", { n: h });
  }
  if (minutes < 48 * 60) return t("h_ago", { n: Math.round(minutes / 60) });
  return t("d_ago", { n: Math.floor(minutes / 1440) });
}

/** An API error in plain words: what went wrong, then the service's own explanation. */
export function errorText(err) {
  if (!isApiError(err)) return String(err && err.message ? err.message : err);
  if (err.status === 0) return t("err_network");
  const key = { 401: "err_401", 403: "err_403", 404: "err_404", 409: "err_409", 422: "err_422", 503: "err_503" }[err.status];
  return t(key || "err_other", { status: err.status, detail: err.detail });
}

export function chip(kind, code, text) {
  return el("span", { cls: `chip ${kind}-${code}`, text, attrs: { "data-code": code } });
}

export function number(v) {
  if (v === null || v === undefined) return t("none");
  return new Intl.NumberFormat(language(), { maximumFractionDigits: 1 }).format(v);
}
