// "My rights": download everything (JSON, FHIR), erase everything (two steps, then a receipt shown and
// downloadable), and who looked at my data (GET /v1/me/access-log).

import { isApiError } from "./api.js";
import { $, el, formatTime, show } from "./dom.js";

let accessNext = null;

export async function loadRights(ctx) {
  show($("erase-start"), !ctx.state.erased);
  for (const id of ["export-json", "export-fhir"]) $(id).disabled = ctx.state.erased;
  accessNext = null;
  $("access-list").replaceChildren();
  await loadAccess(ctx);
}

async function loadAccess(ctx) {
  const { api, t } = ctx;
  const status = $("access-status");
  status.classList.remove("error");
  show(status, false);
  let page;
  try {
    page = await api.accessLog(accessNext);
  } catch (err) {
    if (isApiError(err) && err.status === 404) {
      status.textContent = t("access_unavailable");
      status.dataset.state = "unavailable";
    } else {
      status.textContent = ctx.errorText(err);
      status.dataset.state = "error";
      status.classList.add("error");
    }
    show(status, true);
    show($("access-more"), false);
    return;
  }
  const items = page.items.map((item) => el("li", { cls: "access-item",
    attrs: { "data-role": item.role, "data-what": item.what, "data-at": item.at } },
    el("p", { cls: "strong", text: `${formatTime(item.at)} · ${inWords(ctx, "access_role_", item.role)}` }),
    el("p", { text: whatInWords(ctx, item.what) }),
    item.why ? el("p", { cls: "muted", text: t("access_why", { why: item.why }) }) : null,
    item.staff ? el("p", { cls: "muted", text: t("access_staff", { staff: item.staff }) }) : null));
  $("access-list").append(...items);
  if (!$("access-list").children.length) {
    status.textContent = t("access_none");
    status.dataset.state = "empty";
    show(status, true);
  }
  accessNext = page.next;
  show($("access-more"), Boolean(accessNext));
}

/** A code in words when the page knows it, else as the service wrote it. */
function inWords(ctx, prefix, code) {
  const words = ctx.t(`${prefix}${code}`);
  return words === `${prefix}${code}` ? code : words;
}

/** "readings:heart_rate" → "your heart rate readings"; anything else as written. */
function whatInWords(ctx, what) {
  const [kind, dataType] = String(what).split(":");
  const name = ctx.t(`dt_${dataType}`);
  if (dataType && name !== `dt_${dataType}`) {
    const key = `access_what_${kind}`;
    const words = ctx.t(key, { name });
    if (words !== key) return words;
  }
  return inWords(ctx, "access_what_", what);
}

function saveFile(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", { attrs: { href: url, download: name } });
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function download(ctx, format) {
  const status = $("export-status");
  status.classList.remove("error");
  status.textContent = ctx.t("loading");
  try {
    const response = await ctx.api.exportData(format);
    const blob = await response.blob();
    const name = format === "fhir" ? "health-beidou-export.fhir.json" : "health-beidou-export.json";
    saveFile(blob, name);
    status.textContent = ctx.t("downloaded", { file: name });
  } catch (err) {
    status.textContent = ctx.errorText(err);
    status.classList.add("error");
  }
}

/** What erasure kept, in words: the receipt names tables ("people (tombstone: …)" for the person's row). */
function keptName(ctx, what) {
  const table = what.split(" ")[0];
  const key = `kept_${table}`;
  const words = ctx.t(key);
  return words === key ? what : words;
}

function renderErasure(ctx, receipt) {
  const { t } = ctx;
  const rows = Object.values(receipt.erased).reduce((a, b) => a + b, 0);
  const button = el("button", { text: t("download_receipt"), attrs: { type: "button", id: "receipt-download" } });
  button.addEventListener("click", () => saveFile(new Blob([JSON.stringify(receipt, null, 2)], { type: "application/json" }),
    `health-beidou-erasure-${receipt.receipt_id}.json`));
  const box = $("erase-receipt");
  box.dataset.receiptId = receipt.receipt_id;
  box.replaceChildren(
    el("p", { cls: "strong done", text: t("erase_done") }),
    el("h4", { text: t("erase_receipt") }),
    el("dl", {},
      el("dt", { text: t("receipt_id") }), el("dd", { cls: "mono", text: receipt.receipt_id }),
      el("dt", { text: t("recorded_at") }), el("dd", { text: formatTime(receipt.erased_at) })),
    el("p", { text: t("erased_rows", { n: rows }) }),
    el("p", { cls: "muted", text: t("kept", { what: receipt.kept.map((what) => keptName(ctx, what)).join(t("list_sep")) }) }),
    button);
  show(box, true);
}

export function wireRights(ctx) {
  $("export-json").addEventListener("click", () => download(ctx, "json"));
  $("export-fhir").addEventListener("click", () => download(ctx, "fhir"));
  $("access-more").addEventListener("click", () => loadAccess(ctx));
  $("erase-start").addEventListener("click", () => {
    $("erase-understand").checked = false;
    $("erase-now").disabled = true;
    show($("erase-confirm"), true);
    $("erase-understand").focus();
  });
  $("erase-understand").addEventListener("change", () => { $("erase-now").disabled = !$("erase-understand").checked; });
  $("erase-cancel").addEventListener("click", () => show($("erase-confirm"), false));
  $("erase-now").addEventListener("click", async () => {
    $("erase-now").disabled = true;
    show($("erase-error"), false);
    try {
      const receipt = await ctx.api.erase();
      show($("erase-confirm"), false);
      show($("erase-start"), false);
      renderErasure(ctx, receipt);
      ctx.markErased();
      for (const id of ["export-json", "export-fhir"]) $(id).disabled = true;
    } catch (err) {
      ctx.showError($("erase-error"), err);
      $("erase-now").disabled = !$("erase-understand").checked;
    }
  });
}
