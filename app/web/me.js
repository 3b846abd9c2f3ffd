// The policyholder's own page, opened by the insurer's app in a WebView. The app hands over the person's
// token in the URL fragment (#token=…, read once and removed from the address and history at once) or by
// postMessage; the token is kept in memory only. Every failure is shown as a sentence.

import { isApiError } from "./api.js";
import { $, show } from "./dom.js";
import { meApi } from "./me-api.js";
import { loadConsents } from "./me-consents.js";
import { loadData, resizeCharts } from "./me-data.js";
import { language, pickLanguage, setLanguage, t, translatePage } from "./me-i18n.js";
import { loadMessages, wireQuietHours } from "./me-messages.js";
import { loadRights, wireRights } from "./me-rights.js";

const LANG_KEY = "beidou.me.lang";   // localStorage: a preference, not a secret
const WAIT_FOR_APP_MS = 8000;        // how long to wait for the host app's postMessage

const state = { token: null, tab: "consents", profile: null, erased: false, signedOut: false, dependants: [] };

const api = meApi(() => state.token, (error) => signOut(error.status === 403 ? "signed_out_staff" : "signed_out_expired"));

/** An error in plain words: what went wrong, then the service's own explanation. */
export function errorText(err) {
  if (!isApiError(err)) return t("err_page", { detail: String(err && err.message ? err.message : err) });
  if (err.status === 0) return t("err_network");
  if (err.status === 503) return t("err_503");
  if (err.status === 410) return t("err_410");
  return t("err_other", { status: err.status, detail: err.detail });
}

export function showError(node, err) {
  node.textContent = errorText(err);
  node.dataset.status = isApiError(err) ? String(err.status) : "page";
  show(node, true);
  if (isApiError(err) && err.status === 410) markErased();
}

const ctx = { api, state, t, errorText, showError, markErased: () => markErased() };

// ------------------------------------------------------------------------------------------------ sign-in

function takeFragment() {
  const hash = window.location.hash.replace(/^#/, "");
  if (!hash) return {};
  const params = new URLSearchParams(hash);
  // Gone from the address bar and from history before anything else runs: a back button, a screenshot of
  // the address or a shared link never carries the token.
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  return { token: params.get("token"), lang: params.get("lang") };
}

function waitForApp() {
  return new Promise((resolve) => {
    const timer = window.setTimeout(() => resolve({}), WAIT_FOR_APP_MS);
    window.addEventListener("message", function onMessage(event) {
      // Only the host app: a native postWebMessage has no source window; evaluateJavascript posts from this
      // window itself. Nothing another window could send is accepted.
      if (event.source !== null && event.source !== window) return;
      let data = event.data;
      if (typeof data === "string") {  // Android's postWebMessage carries a string: JSON text
        try {
          data = JSON.parse(data);
        } catch {
          return;
        }
      }
      if (!data || data.type !== "beidou:token" || typeof data.token !== "string") return;
      window.clearTimeout(timer);
      window.removeEventListener("message", onMessage);
      resolve({ token: data.token, lang: data.lang });
    });
  });
}

async function boot() {
  document.body.dataset.started = "true";  // the watchdog (me-watchdog.js) stands down
  let handed = takeFragment();
  setLanguage(pickLanguage([handed.lang, localStorage.getItem(LANG_KEY)], navigator.language));
  translatePage();
  if (!handed.token) {
    $("boot").textContent = t("waiting_app");
    handed = await waitForApp();
    if (handed.lang) setLanguage(pickLanguage([handed.lang], navigator.language));
    translatePage();
  }
  if (!handed.token) {
    signOut("signed_out_missing");
    return;
  }
  state.token = handed.token;
  try {
    state.profile = await api.profile();
  } catch (err) {
    if (state.signedOut) return;
    if (isApiError(err) && err.status === 410) {
      show($("boot"), false);
      show($("app-view"), true);
      markErased();
      await loadTab("rights");  // what is left to see: the erasure's effects and who looked
      return;
    }
    $("boot").textContent = errorText(err);
    $("boot").classList.add("error");
    return;
  }
  try {
    state.dependants = (await api.dependants()).dependants;
  } catch {
    state.dependants = [];  // the page still works for the person themselves
  }
  show($("boot"), false);
  show($("app-view"), true);
  document.body.dataset.signedIn = "true";
  await loadTab("consents");
}

function signOut(reasonKey) {
  state.token = null;
  state.signedOut = true;
  show($("boot"), false);
  show($("app-view"), false);
  $("signed-out-why").textContent = t(reasonKey);
  $("signed-out").dataset.reason = reasonKey;
  show($("signed-out"), true);
}

function markErased() {
  if (state.erased) return;
  state.erased = true;
  show($("erased-banner"), true);
  document.body.dataset.erased = "true";
}

// ------------------------------------------------------------------------------------------------ tabs

const LOADERS = { consents: loadConsents, data: loadData, messages: loadMessages, rights: loadRights };

async function loadTab(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll(".tab")) {
    button.setAttribute("aria-pressed", String(button.dataset.tab === tab));
  }
  for (const name of Object.keys(LOADERS)) show($(`tab-${name}`), name === tab);
  // What is on screen may be replaced in a moment: it takes no taps until the fresh copy is drawn, so a
  // switch or a reply button never changes under the person's finger.
  const panel = $(`tab-${tab}`);
  panel.inert = true;
  panel.setAttribute("aria-busy", "true");
  try {
    await LOADERS[tab](ctx);
  } catch (err) {
    const node = $(`${tab}-error`) || $("access-status");
    if (node) showError(node, err);
  } finally {
    panel.inert = false;
    panel.setAttribute("aria-busy", "false");
  }
}

for (const button of document.querySelectorAll(".tab")) {
  button.addEventListener("click", () => loadTab(button.dataset.tab));
}

$("lang-toggle").addEventListener("click", () => {
  setLanguage(language() === "zh-CN" ? "en" : "zh-CN");
  localStorage.setItem(LANG_KEY, language());
  translatePage();
  if (state.token) loadTab(state.tab);
  else if ($("signed-out").dataset.reason) $("signed-out-why").textContent = t($("signed-out").dataset.reason);
});

window.addEventListener("resize", () => resizeCharts());
window.addEventListener("unhandledrejection", (event) => {
  $("boot").textContent = errorText(event.reason);
  $("boot").classList.add("error");
  show($("boot"), true);
});

wireQuietHours(ctx);
wireRights(ctx);
boot().catch((err) => {
  show($("boot"), true);
  $("boot").textContent = errorText(err);
});
