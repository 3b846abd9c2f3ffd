// The care page: sign in with a staff token, work the live alert queue, open an alert, act on it.

import { renderActions, renderChartLabels, renderEvidence, renderHeader, renderTimeline } from "./alert-view.js";
import { careApi, isApiError, peekClaims } from "./api.js";
import { chartSpec, chartWindow, drawChart, hiddenChart, setDataTypes } from "./chart.js";
import { $, age, el, errorText, filledIn, onTokenSubmit, say, show } from "./dom.js";
import { addDataTypes, label, language, pickLanguage, serviceText, setLanguage, t, translatePage } from "./i18n.js";
import { LiveFeed } from "./live.js";
import { renderNotifications } from "./notification-view.js";
import { renderQueueList } from "./queue-view.js";

const TOKEN_KEY = "beidou.care.token";       // sessionStorage: gone when the tab closes
const LANG_KEY = "beidou.care.lang";         // localStorage: a preference, not a secret
const POLL_MS = 30_000;                      // the queue's refresh while the live feed is down
const PAGE_SIZE = 50;
const SUPERVISING = ["care_supervisor", "tenant_admin"];
// The queue's filters, each a <select id="f-<name>"> labelled ``f_<name>``: the choice it starts on [value, label
// key], then the service's codes, labelled ``<prefix>_<code>`` as everywhere else on the page (see label()).
const FILTERS = {
  status: { first: ["active", "status_active"], prefix: "st", codes: ["open", "claimed", "contacted", "resolved"] },
  severity: { first: ["", "any"], prefix: "sev", codes: ["critical", "high", "low", "info"] },
  assignee: { first: ["", "any"], prefix: "assignee", codes: ["me"] },
  kind: { prefix: "kind", codes: ["health", "data_gap", "both"] },
};
const RESOLVE_REASONS = { first: ["", "choose_reason"], prefix: "res",
  codes: ["needed_help", "member_fine", "false_alarm", "no_response", "consent_withdrawn"] };

const state = {
  token: null,
  working: false,
  claims: {},
  dataTypesLoaded: false,
  alerts: [],
  nextPage: null,
  shown: PAGE_SIZE,
  queueLoadedAt: null,
  selectedId: null,
  detail: null,
  chart: null,
  chartKey: null,
  chartData: null,
  refreshTimer: null,
  queueRequest: 0,
  detailRequest: 0,
};

// A 401 while working means the token expired or was revoked: back to the login view.
const api = careApi(() => state.token, (detail) => {
  if (state.working) signOut({ expired: detail });
});

const live = new LiveFeed({
  // Browsers cannot set headers on a WebSocket; the service accepts the token as ?access_token=.
  url: () => `${window.location.protocol === "https:" ? "wss:" : "ws:"}//${window.location.host}`
    + `/v1/care/live?access_token=${encodeURIComponent(state.token)}`,
  onMessage: (message) => {
    if (message.type !== "alert") return;
    scheduleQueueReload();
    // A change the feed may not name (its data is hidden now) may be the open alert's: re-read it.
    if (state.selectedId && (message.alert_id === state.selectedId || message.action === "hidden")) {
      loadDetail(state.selectedId, { quiet: true });
    }
  },
  onChange: (up) => {
    renderLiveState();
    if (up) loadQueue();  // catch up with whatever happened while the feed was down
  },
  poll: () => loadQueue(),
  pollMs: POLL_MS,
  onExpired: () => {
    if (state.working) signOut({ expired: "token expired" });
  },
});

function roleOf(alert) {
  return {
    mine: alert.assignee !== null && alert.assignee === state.claims.sub,
    supervises: SUPERVISING.includes(state.claims.role),
  };
}

// ---------------------------------------------------------------------------------------------- sign in / out

async function signIn(token) {
  $("login-error").hidden = true;
  $("login-button").disabled = true;
  $("login-button").textContent = t("checking");
  state.token = token;
  try {
    await api.queue({ limit: 1 });
  } catch (err) {
    state.token = null;
    const message = isApiError(err) && err.status === 403 ? t("token_not_staff") : errorText(err);
    say("login-error", message);
    return;
  } finally {
    $("login-button").disabled = false;
    $("login-button").textContent = t("login");
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token-input").value = "";
  startWork();
}

function signOut({ expired = null } = {}) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.working = false;
  state.claims = {};
  live.stop();
  clearInterval(state.refreshTimer);
  state.refreshTimer = null;
  closeDetail();
  state.alerts = [];
  $("queue").replaceChildren();
  showLogin();
  const message = $("login-message");
  if (expired !== null) {
    message.textContent = t("session_expired", { detail: expired });
    message.dataset.kind = "expired";
  } else {
    message.textContent = t("logged_out");
    message.dataset.kind = "logged_out";
  }
  message.hidden = false;
  $("login-error").hidden = true;
}

function showLogin() {
  show($("login-view"), true);
  show($("work-view"), false);
  show($("logout"), false);
  show($("who"), false);
  show($("live-state"), false);
  $("token-input").focus();
}

function startWork() {
  state.working = true;
  state.claims = peekClaims(state.token);
  show($("login-view"), false);
  show($("login-message"), false);
  show($("work-view"), true);
  show($("logout"), true);
  renderWho();
  show($("who"), true);
  show($("live-state"), true);
  loadDataTypes().finally(loadQueue);
  live.start();
  clearInterval(state.refreshTimer);
  state.refreshTimer = setInterval(renderAges, 30_000);
}

/** Names, units and chart settings of the data types, as the service declares them (once per page load). */
async function loadDataTypes() {
  if (state.dataTypesLoaded) return;
  try {
    const { data_types: types } = await api.dataTypes();
    addDataTypes(types);
    setDataTypes(types);
    state.dataTypesLoaded = true;
  } catch (err) {
    if (!isApiError(err)) throw err;  // without them the page shows codes instead of names, and retries next time
  }
}

function renderWho() {
  const role = state.claims.role ? label("role", state.claims.role) : "";
  $("who").textContent = state.claims.sub ? t("signed_in_as", { who: state.claims.sub, role }) : "";
}

function renderLiveState() {
  const node = $("live-state");
  node.dataset.state = live.up ? "live" : "offline";
  node.textContent = live.up ? t("live") : t("offline");
  node.title = live.up ? t("live_title") : t("offline_title");
}

// ---------------------------------------------------------------------------------------------- queue

function queueParams(limit) {
  const status = $("f-status").value;
  const kind = $("f-kind").value;
  return {
    status: status === "active" ? ["open", "claimed", "contacted"] : [status],
    severity: $("f-severity").value || undefined,
    assignee: $("f-assignee").value || undefined,
    // A person's request for help is always listed with health alerts: it must never go unseen.
    kind: kind === "both" ? ["health", "data_gap", "help_request"]
      : kind === "health" ? ["health", "help_request"] : [kind],
    limit,
  };
}

let reloadTimer = null;
function scheduleQueueReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(loadQueue, 150);  // a burst of changes is one fetch
}

async function loadQueue() {
  if (!state.token) return;
  const request = ++state.queueRequest;
  try {
    const page = await api.queue(queueParams(Math.min(Math.max(state.shown, PAGE_SIZE), 200)));
    if (request !== state.queueRequest) return;
    state.alerts = page.alerts;
    state.nextPage = page.next_page;
    state.queueLoadedAt = new Date().toISOString();
    $("queue-error").hidden = true;
    renderQueue();
    // The open alert changed meanwhile (seen by polling, or a live message about it was missed).
    const open = state.detail && state.alerts.find((a) => a.id === state.detail.id);
    if (open && open.updated_at !== state.detail.updated_at) loadDetail(open.id, { quiet: true });
  } catch (err) {
    if (request !== state.queueRequest || !state.token) return;
    say("queue-error", errorText(err));
  }
}

async function loadMore() {
  if (!state.nextPage) return;
  try {
    const page = await api.queue({ ...queueParams(PAGE_SIZE), page: state.nextPage });
    state.alerts = state.alerts.concat(page.alerts);
    state.nextPage = page.next_page;
    state.shown = state.alerts.length;
    renderQueue();
  } catch (err) {
    say("queue-error", errorText(err));
  }
}

function renderQueue() {
  renderQueueList(state.alerts, { selectedId: state.selectedId, more: Boolean(state.nextPage),
    loadedAt: state.queueLoadedAt });
}

function renderAges() {
  for (const node of document.querySelectorAll("[data-age]")) node.textContent = age(node.dataset.age);
}

// ---------------------------------------------------------------------------------------------- detail

function closeDetail() {
  state.selectedId = null;
  state.detail = null;
  state.chartKey = null;
  state.chartData = null;
  if (state.chart) state.chart.destroy();
  state.chart = null;
  show($("detail"), false);
  show($("detail-empty"), true);
}

function openAlert(id) {
  if (state.selectedId !== id) {
    state.selectedId = id;
    state.chartKey = null;
    hideForms();
    for (const form of document.querySelectorAll(".action-form")) form.reset();  // notes belong to one alert
    $("action-error").hidden = true;
    $("action-status").textContent = "";
  }
  for (const node of document.querySelectorAll(".queue-item")) {
    node.classList.toggle("selected", node.dataset.alertId === id);
    node.setAttribute("aria-selected", String(node.dataset.alertId === id));
  }
  loadDetail(id);
}

async function loadDetail(id, { quiet = false } = {}) {
  const request = ++state.detailRequest;
  if (!quiet) $("action-status").textContent = t("loading");
  try {
    const detail = await api.alert(id);
    if (request !== state.detailRequest || state.selectedId !== id) return;
    if (!quiet) $("action-status").textContent = "";
    renderDetail(detail);
  } catch (err) {
    if (request !== state.detailRequest || !state.token) return;
    $("action-status").textContent = "";
    showActionError(err);
  }
}

function renderDetail(alert) {
  state.detail = alert;
  show($("detail-empty"), false);
  show($("detail"), true);
  renderHeader(alert);
  renderActions(alert, roleOf(alert));
  renderEvidence(alert.evidence);
  renderTimeline(alert.timeline);
  renderNotifications(alert.notifications, alert.timeline);
  loadChart(alert);
}

// ---------------------------------------------------------------------------------------------- chart

async function loadChart(alert) {
  const spec = chartSpec(alert.metric);
  // Re-read the series only when what it shows changes: each read is written to the audit log. A withdrawn
  // consent changes it too: the service then answers `data_hidden` and the chart goes at once.
  const key = `${alert.id}|${alert.metric}|${alert.episode_start}|${alert.episode_end}|${alert.evidence.length}`
    + `|${alert.resolution === "consent_withdrawn"}`;
  if (state.chartKey === key) return;
  state.chartKey = key;
  const { from, to } = chartWindow(alert);
  renderChartLabels(alert, spec);
  show($("chart-empty"), false);
  if (hiddenChart(alert)) {  // nothing to ask for: the values are not shown to staff
    state.chartData = { alert, spec, series: { points: [], data_hidden: true }, from, to };
    renderChart();
    return;
  }
  try {
    const series = await api.readings(alert.person, {
      metric: alert.metric, bucket: spec.bucket, from: new Date(from).toISOString(),
      to: new Date(to).toISOString(), why: `care page: alert ${alert.id}`,
    });
    if (state.selectedId !== alert.id) return;
    state.chartData = { alert, spec, series, from, to };
    renderChart();
  } catch (err) {
    state.chartKey = null;
    if (!state.token) return;
    if (state.chart) state.chart.destroy();  // nothing of a withdrawn data type stays on screen
    state.chart = null;
    state.chartData = null;
    $("chart").replaceChildren();
    $("chart-empty").textContent = errorText(err);
    show($("chart-empty"), true);
  }
}

function renderChart() {
  if (!state.chartData) return;
  const { alert, spec, series, from, to } = state.chartData;
  if (state.chart) state.chart.destroy();
  state.chart = null;
  renderChartLabels(alert, spec, { from, to });
  const hidden = hiddenChart(alert, series);
  if (hidden) {
    $("chart").replaceChildren();
    $("chart-empty").textContent = t(hidden);
    $("chart-empty").dataset.reason = "consent";
    show($("chart-empty"), true);
    return;
  }
  delete $("chart-empty").dataset.reason;
  state.chart = drawChart($("chart"), {
    points: series.points, spec, evidence: alert.evidence, from, to,
    episode: { start: alert.episode_start, end: alert.episode_end },
  });
  show($("chart-empty"), !state.chart);
  if (!state.chart) $("chart-empty").textContent = t("chart_empty", { metric: label("m", alert.metric) });
}

// ---------------------------------------------------------------------------------------------- actions

function hideForms() {
  for (const id of ["contact-form", "resolve-form", "reassign-form"]) show($(id), false);
}

function toggleForm(id) {
  const form = $(id);
  const open = form.hidden;
  hideForms();
  $("action-error").hidden = true;
  show(form, open);
  if (open) {
    const first = form.querySelector("select, input, textarea");
    if (first) first.focus();
  }
}

function showActionError(err, action = null) {
  // A refused reach-out (no outreach consent, or resolved meanwhile) is not a race: say why, and to call.
  const refusedReachOut = action === "reach-out" && isApiError(err) && err.status === 409;
  $("action-error").textContent = refusedReachOut
    ? t("reach_out_refused", { detail: serviceText(err.detail) }) : errorText(err);
  $("action-error").dataset.status = isApiError(err) ? String(err.status) : "";
  $("action-error").hidden = false;
}

async function act(action, body) {
  const id = state.selectedId;
  if (!id) return;
  $("action-error").hidden = true;
  $("action-status").textContent = t("working");
  const buttons = document.querySelectorAll(".actions button, .action-form button");
  for (const b of buttons) b.disabled = true;
  try {
    const detail = await api.act(id, action, body);
    hideForms();
    for (const form of document.querySelectorAll(".action-form")) form.reset();
    $("action-status").textContent = t(`done_${action.replaceAll("-", "_")}`);
    if (state.selectedId === id) renderDetail(detail);
    loadQueue();
  } catch (err) {
    $("action-status").textContent = "";
    if (!state.token) return;
    showActionError(err, action);
    // The alert may have moved on (someone else claimed it): show it as it is now.
    if (isApiError(err) && [403, 409].includes(err.status)) {
      loadDetail(id, { quiet: true });
      loadQueue();
    }
  } finally {
    for (const b of document.querySelectorAll(".action-form button")) b.disabled = false;
    if (state.detail) renderActions(state.detail, roleOf(state.detail));
  }
}

function noteOf(id) {
  const value = $(id).value.trim();
  return value ? value : null;
}

// ---------------------------------------------------------------------------------------------- wiring

function applyLanguage(lang) {
  setLanguage(lang);
  translatePage();
  renderWho();
  if (state.token) {
    renderLiveState();
    renderQueue();
    if (state.detail) {
      renderDetail(state.detail);  // the chart's data is kept: only its labels change
      renderChart();
    }
  }
}

function options({ first, prefix, codes }) {
  const choices = [...(first ? [first] : []), ...codes.map((code) => [code, `${prefix}_${code}`])];
  return choices.map(([value, key]) => el("option", { attrs: { value, "data-i18n": key } }));
}

/** The filters and the resolve form's reasons, from the tables above (labelled by translatePage). */
function buildChoices() {
  $("filters").prepend(...Object.entries(FILTERS).map(([name, choices]) => el("label", {},
    el("span", { attrs: { "data-i18n": `f_${name}` } }),
    el("select", { attrs: { id: `f-${name}` } }, ...options(choices)))));
  $("resolve-reason").replaceChildren(...options(RESOLVE_REASONS));
}

function wire() {
  onTokenSubmit(signIn, t);
  $("logout").addEventListener("click", () => signOut());
  $("lang-toggle").addEventListener("click", () => {
    const next = language() === "zh-CN" ? "en" : "zh-CN";
    localStorage.setItem(LANG_KEY, next);
    applyLanguage(next);
  });
  for (const name of Object.keys(FILTERS)) {
    $(`f-${name}`).addEventListener("change", () => {
      state.shown = PAGE_SIZE;
      loadQueue();
    });
  }
  $("refresh").addEventListener("click", () => {
    loadQueue();
    if (state.selectedId) loadDetail(state.selectedId, { quiet: true });
  });
  $("more").addEventListener("click", loadMore);
  const queue = $("queue");
  queue.addEventListener("click", (event) => {
    const item = event.target.closest(".queue-item");
    if (item) openAlert(item.dataset.alertId);
  });
  queue.addEventListener("keydown", (event) => {
    const item = event.target.closest(".queue-item");
    if (item && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      openAlert(item.dataset.alertId);
    }
  });

  $("a-claim").addEventListener("click", () => act("claim"));
  $("a-reopen").addEventListener("click", () => act("reopen"));
  $("a-reach-out").addEventListener("click", () => act("reach-out"));
  $("a-contact").addEventListener("click", () => toggleForm("contact-form"));
  $("a-resolve").addEventListener("click", () => toggleForm("resolve-form"));
  $("a-reassign").addEventListener("click", () => toggleForm("reassign-form"));
  for (const button of document.querySelectorAll(".action-form .cancel")) {
    button.addEventListener("click", () => hideForms());
  }
  $("contact-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("contact", { note: noteOf("contact-note") });
  });
  $("resolve-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = $("resolve-reason").value;
    if (!reason) {
      $("action-error").dataset.status = "";
      say("action-error", t("reason_required"));
      $("resolve-reason").focus();
      return;
    }
    act("resolve", { reason, note: noteOf("resolve-note") });
  });
  $("reassign-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const assignee = filledIn("reassign-to", "action-error", t("reassign_required"));
    if (assignee) act("reassign", { assignee, note: noteOf("reassign-note") });
  });

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (state.chart) state.chart.setSize({ width: Math.max($("chart").clientWidth, 300), height: 210 });
    }, 100);
  });
}

function main() {
  setLanguage(pickLanguage([localStorage.getItem(LANG_KEY)], navigator.language));
  buildChoices();
  translatePage();
  wire();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    state.token = token;
    startWork();  // a 401 on the first fetch sends us back to the login view
  } else {
    showLogin();
  }
}

main();
