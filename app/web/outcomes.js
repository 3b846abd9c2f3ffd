// The outcomes page: the insurer's report (GET /v1/care/outcomes) as cards, a funnel, two uPlot charts and
// tables. The staff token is the care queue's (sessionStorage, this tab only); data enters the page only as text.

import { ApiError, isApiError, peekClaims } from "./api.js";
import { $, el, onTokenSubmit, say, show } from "./dom.js";
import { language, pickLanguage, setLanguage, t, translatePage } from "./outcomes-i18n.js";

const TOKEN_KEY = "beidou.care.token";
const LANG_KEY = "beidou.care.lang";
const DAY_MS = 86_400_000;  // the default range's arithmetic
const state = { token: null, report: null, charts: [] };

async function call(params, accept = "application/json") {
  const url = new URL("/v1/care/outcomes", window.location.origin);
  for (const [k, v] of Object.entries(params)) if (v) url.searchParams.set(k, v);
  let response;
  try {
    response = await fetch(url, { headers: { Accept: accept, Authorization: `Bearer ${state.token}` },
      cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
  } catch (err) {
    throw new ApiError(0, String(err && err.message ? err.message : err));
  }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail ?? detail; } catch { /* not JSON */ }
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return accept === "text/csv" ? response.text() : response.json();
}

function errorText(err) {
  if (!isApiError(err)) return String(err && err.message ? err.message : err);
  if (err.status === 0) return t("err_network");
  if (err.status === 403) return t("not_allowed");
  return t("err_other", { status: err.status, detail: err.detail });
}

const fmt = (v, digits = 0) => (v === null || v === undefined ? t("none")
  : new Intl.NumberFormat(language(), { maximumFractionDigits: digits }).format(v));
const pct = (v) => (v === null || v === undefined ? t("none")
  : new Intl.NumberFormat(language(), { style: "percent", maximumFractionDigits: 1 }).format(v));

function duration(seconds) {
  if (seconds === null || seconds === undefined) return t("none");
  const unit = (value, u) => new Intl.NumberFormat(language(), { style: "unit", unit: u, unitDisplay: "short",
    maximumFractionDigits: 1 }).format(value);
  if (seconds < 3600) return unit(seconds / 60, "minute");
  if (seconds < 2 * 86400) return unit(seconds / 3600, "hour");
  return unit(seconds / 86400, "day");
}

function params() {
  return { from: $("r-from").value, to: $("r-to").value, bucket: $("r-bucket").value };
}

async function load() {
  $("report-error").hidden = true;
  $("r-apply").disabled = true;
  try {
    state.report = await call(params());
    render();
  } catch (err) {
    say("report-error", errorText(err));
    if (isApiError(err) && err.status === 401) signOut();
  } finally {
    $("r-apply").disabled = false;
  }
}

function card(name, value, code) {
  return el("div", { cls: "card", attrs: { "data-card": code } }, el("div", { cls: "value", text: value }),
    el("div", { cls: "name", text: t(name) }));
}

function render() {
  const r = state.report;
  if (!r) return;
  $("r-zone").textContent = t("zone", { zone: r.time_zone });
  $("cards").replaceChildren(
    card("c_monitored", fmt(r.people.monitored), "monitored"),
    card("c_active", fmt(r.people.active), "active"),
    card("c_opened", fmt(r.funnel.opened), "opened"),
    card("c_reach", pct(r.funnel.reach_rate), "reach"),
    card("c_claim", duration(r.times.claim.median_s), "claim"),
    card("c_escalations", fmt(r.escalations), "escalations"),
    card("c_breaches", fmt(r.deadline_breaches), "breaches"),
    card("c_consent", `${fmt(r.people.consent_grants)} / ${fmt(r.people.consent_withdrawals)}`, "consent"),
  );
  renderFunnel(r.funnel);
  $("times").tBodies[0].replaceChildren(...["claim", "first_contact", "answer"].map((k) => el("tr", {},
    el("th", { text: t(`t_${k}`) }), el("td", { cls: "num", text: duration(r.times[k].median_s) }),
    el("td", { cls: "num", text: duration(r.times[k].p90_s) }))));
  fillTable("resolutions", r.resolutions, (x) => [x.feature, fmt(x.needed_help), fmt(x.false_alarm),
    fmt(x.member_fine), pct(x.precision)], 5);
  fillTable("pushes", r.pushes, (x) => [x.provider, t(`r_${x.recipient}`), fmt(x.sent), fmt(x.delivered),
    fmt(x.opened), fmt(x.answered), fmt(x.dead_letters)], 7);
  fillTable("agents", r.agents, (x) => [x.agent, fmt(x.assigned), fmt(x.contacted), fmt(x.resolved),
    fmt(x.unresolved)], 5);
  drawCharts(r);
}

function renderFunnel(f) {
  const steps = ["opened", "claimed", "contacted", "answered", "resolved"];
  $("funnel").replaceChildren(...steps.map((step) => {
    const share = f.shares[step] ?? 0;
    const bar = el("div", { cls: "bar" });
    bar.style.width = `${Math.round(share * 1000) / 10}%`;  // CSSOM, allowed by the strict CSP
    const figure = `${fmt(f[step])} · ${pct(f.shares[step])}`;
    const item = el("li", { cls: step === "answered" ? "reach" : "", attrs: { "data-step": step } },
      el("span", { text: t(`f_${step}`) }), el("div", { cls: "bar-track" }, bar),
      el("span", { cls: "figure", text: figure }));
    if (step === "answered") {
      item.title = t("answers", { fine: f.answered_fine, help: f.answered_help, call: f.answered_call });
    }
    return item;
  }));
}

function fillTable(id, rows, cells, width) {
  const body = $(id).tBodies[0];
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { cls: "muted", text: t("nothing"), attrs: { colspan: String(width) } })));
    return;
  }
  body.replaceChildren(...rows.map((row) => el("tr", {}, ...cells(row).map((c, i) => el("td", {
    cls: i ? "num" : "", text: c })))));
}

function drawCharts(r) {
  for (const chart of state.charts) chart.destroy();
  state.charts = [];
  if (!window.uPlot) return;
  // x is the bucket's position; its label is the insurer's local date (never the browser's time zone).
  const labels = r.series.map((s) => (r.bucket === "month" ? s.bucket.slice(0, 7) : s.bucket.slice(5)));
  const xs = r.series.map((_, i) => i);
  const col = (k) => r.series.map((s) => s[k]);
  const width = Math.max(320, $("chart-funnel").clientWidth || 900);
  const every = Math.max(1, Math.ceil(xs.length / 12));
  const axes = [{ splits: () => xs.filter((i) => i % every === 0), values: (u, splits) => splits.map((i) => labels[i] ?? "") },
    {}];
  const xSeries = { label: t("bucket"), value: (u, i) => (i === null || i === undefined ? "" : r.series[i]?.bucket ?? "") };
  const line = (label, stroke) => ({ label, stroke, width: 2, points: { show: xs.length < 60 } });
  state.charts.push(new window.uPlot({
    width, height: 220, axes, scales: { x: { time: false } },
    series: [xSeries, line(t("f_opened"), "#1d4ed8"), line(t("f_contacted"), "#7c3aed"),
      line(t("f_answered"), "#15803d"), line(t("f_resolved"), "#64748b")],
  }, [xs, col("opened"), col("contacted"), col("answered"), col("resolved")], $("chart-funnel")));
  state.charts.push(new window.uPlot({
    width, height: 200, axes, scales: { x: { time: false } },
    series: [xSeries, line(t("s_monitored"), "#1d4ed8"), line(t("s_grants"), "#15803d"),
      line(t("s_withdrawals"), "#b91c1c")],
  }, [xs, col("monitored"), col("consent_grants"), col("consent_withdrawals")], $("chart-people")));
}

async function downloadCsv() {
  try {
    const text = await call({ ...params(), format: "csv" }, "text/csv");
    const link = el("a", { attrs: { download: `outcomes-${$("r-from").value}-${$("r-to").value}.csv` } });
    link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    document.body.append(link);
    link.click();
    link.remove();
  } catch (err) {
    say("report-error", errorText(err));
  }
}

function signIn(token) {
  $("token-input").value = "";
  $("login-error").hidden = true;
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  const claims = peekClaims(token);
  $("who").textContent = claims.sub || "";
  show($("who"), true);
  show($("logout"), true);
  show($("login-view"), false);
  show($("report-view"), true);
  load();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  show($("report-view"), false);
  show($("logout"), false);
  show($("who"), false);
  show($("login-view"), true);
}

function defaultRange() {
  const today = new Date();
  const iso = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
  $("r-to").value = iso(new Date(today.getTime() + DAY_MS));
  $("r-from").value = iso(new Date(today.getTime() - 89 * DAY_MS));
}

function init() {
  setLanguage(pickLanguage([localStorage.getItem(LANG_KEY)], navigator.language));
  document.body.classList.add("outcomes");
  translatePage();
  const query = new URLSearchParams(window.location.search);
  defaultRange();
  for (const key of ["from", "to", "bucket"]) if (query.get(key)) $(`r-${key}`).value = query.get(key);
  $("lang-toggle").addEventListener("click", () => {
    const next = language() === "en" ? "zh-CN" : "en";
    localStorage.setItem(LANG_KEY, next);
    setLanguage(next);
    translatePage();
    render();
  });
  $("logout").addEventListener("click", signOut);
  $("range").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("r-csv").addEventListener("click", downloadCsv);
  onTokenSubmit(signIn, t);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token); else signOut();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
