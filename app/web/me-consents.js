// "My consents": every data type × purpose with its notice and version, one switch each. Turning a switch
// first says what will happen (on) or what stops at once (off); the change is made only when confirmed, and
// its receipt is shown. Guardians choose whose consents they manage.

import { $, el, formatTime, show } from "./dom.js";
import { language } from "./me-i18n.js";

const PURPOSES = ["monitoring", "outreach", "research"];
const APP = "beidou-me-page/1";

let whose = "";  // "" = the person themselves, else a dependant's external id
let loading = 0;  // the newest load: an older one that answers later (whose changed meanwhile) draws nothing

export async function loadConsents(ctx) {
  const { api, state, t } = ctx;
  renderWhose(ctx);
  show($("consents-error"), false);
  if (state.erased) {  // the consent routes answer 410 now; the erasure receipt is under My rights
    $("consent-list").replaceChildren();
    $("history").replaceChildren();
    show($("receipt"), false);
    return;
  }
  const mine = ++loading;
  const [overview, notices, history] = await Promise.all([
    api.consents(whose || null), api.notices(language()), api.history(whose || null),
  ]);
  if (mine !== loading) return;
  const byKey = new Map(notices.notices.map((n) => [`${n.data_type}/${n.purpose}`, n]));
  const types = [...new Set(overview.consents.map((c) => c.data_type))];
  const cards = types.map((type) => {
    const granted = new Set(overview.consents.filter((c) => c.data_type === type && c.granted).map((c) => c.purpose));
    const rows = PURPOSES.map((purpose) => overview.consents.find((c) => c.data_type === type && c.purpose === purpose))
      .filter(Boolean)
      .map((item) => consentRow(ctx, { ...item, needsMet: item.needs.every((need) => granted.has(need)) },
        byKey.get(`${type}/${item.purpose}`)));
    return el("section", { cls: "card consent-card", attrs: { "data-type": type, "aria-labelledby": `ct-${type}` } },
      el("h3", { text: t(`dt_${type}`), attrs: { id: `ct-${type}` } }), ...rows);
  });
  $("consent-list").replaceChildren(...cards);
  $("consent-list").dataset.whose = whose;  // whose consents are on screen ("" = the person's own)
  renderHistory(ctx, history.events);
}

function renderWhose(ctx) {
  const { state, t } = ctx;
  const select = $("whose-select");
  show($("whose-row"), state.dependants.length > 0 && !state.erased);
  const options = [el("option", { text: t("whose_me"), attrs: { value: "" } }),
    ...state.dependants.map((d) => el("option", { text: t("whose_dependant", { name: d.external_id }),
      attrs: { value: d.external_id } }))];
  select.replaceChildren(...options);
  select.value = whose;
  select.onchange = () => {
    whose = select.value;
    show($("receipt"), false);
    loadConsents(ctx).catch((err) => ctx.showError($("consents-error"), err));
  };
}

function consentRow(ctx, item, notice) {
  const { t } = ctx;
  const id = `sw-${item.data_type}-${item.purpose}`;
  const input = el("input", { attrs: { type: "checkbox", role: "switch", id, "data-type": item.data_type,
    "data-purpose": item.purpose, "aria-describedby": `${id}-notice` } });
  input.checked = item.granted;
  const state = el("span", { cls: "switch-state", text: item.granted ? t("on") : t("off") });
  const facts = [];
  if (item.granted && !item.in_effect) facts.push(el("p", { cls: "note", text: t("needs_monitoring") }));
  if (item.granted && item.valid_until) facts.push(el("p", { cls: "muted", text: t("until", { when: formatTime(item.valid_until) }) }));
  if (item.actor === "guardian" || item.actor === "system") {
    facts.push(el("p", { cls: "muted", text: t(item.actor === "guardian" ? "by_guardian" : "by_system") }));
  }
  const row = el("div", { cls: "consent-row", attrs: { "data-purpose": item.purpose, "data-granted": String(item.granted) } },
    el("div", { cls: "switch-line" },
      el("label", { cls: "purpose", text: t(`purpose_${item.purpose}`), attrs: { for: id } }), state, input),
    el("p", { cls: "notice-text", text: notice ? notice.text : item.description, attrs: { id: `${id}-notice` } }),
    el("p", { cls: "version muted", text: t("notice_version", { version: notice ? notice.version : "—" }) }),
    ...facts);
  input.addEventListener("change", () => {
    input.checked = item.granted;  // nothing changes until the person confirms
    askToConfirm(ctx, row, item, notice);
  });
  return row;
}

function askToConfirm(ctx, row, item, notice) {
  const { t } = ctx;
  for (const open of document.querySelectorAll(".consent-row .confirm")) open.remove();
  const granting = !item.granted;
  const name = t(`dt_${item.data_type}`);
  const error = el("p", { cls: "error", attrs: { role: "alert" } });
  error.hidden = true;
  const go = el("button", { cls: granting ? "primary" : "danger", text: granting ? t("agree") : t("withdraw"),
    attrs: { type: "button", "data-action": granting ? "grant" : "withdraw" } });
  const cancel = el("button", { text: t("cancel"), attrs: { type: "button" } });
  const panel = el("div", { cls: `confirm ${granting ? "grant" : "withdraw"}`, attrs: { role: "group",
    "aria-label": granting ? t("confirm_grant_title") : t("confirm_withdraw_title") } },
    el("h4", { text: granting ? t("confirm_grant_title") : t("confirm_withdraw_title") }),
    el("p", { text: t(`${granting ? "grant" : "withdraw"}_${item.purpose}`, { name }) }),
    granting && !item.needsMet ? el("p", { cls: "note", text: t("needs_monitoring") }) : null,
    el("div", { cls: "buttons" }, go, cancel), error);
  row.append(panel);
  cancel.addEventListener("click", () => panel.remove());
  go.addEventListener("click", async () => {
    go.disabled = true;
    cancel.disabled = true;
    go.textContent = t("saving");
    const body = { app: APP, notice_version: notice ? notice.version : undefined };
    try {
      const change = granting
        ? await ctx.api.grant(whose || null, item.data_type, item.purpose, body)
        : await ctx.api.withdraw(whose || null, item.data_type, item.purpose, body);
      showReceipt(ctx, change, item);
      await loadConsents(ctx);
      // The receipt also under the switch just turned, where the person is looking.
      const changed = document.querySelector(`#consent-list .consent-card[data-type="${item.data_type}"] `
        + `.consent-row[data-purpose="${item.purpose}"]`);
      if (changed) {
        changed.append(el("p", { cls: "row-receipt", attrs: { role: "status" },
          text: `${t("receipt_id")}: ${change.receipt.receipt_id} · ${formatTime(change.receipt.recorded_at)}` }));
      }
    } catch (err) {
      ctx.showError(error, err);
      go.disabled = false;
      cancel.disabled = false;
      go.textContent = granting ? t("agree") : t("withdraw");
    }
  });
  go.focus();
}

function showReceipt(ctx, change, item) {
  const { t } = ctx;
  const title = `${t(`purpose_${item.purpose}`)} · ${t(`dt_${item.data_type}`)}`;
  const box = $("receipt");
  box.dataset.receiptId = change.receipt.receipt_id;
  box.dataset.action = change.receipt.action;
  box.replaceChildren(
    el("h3", { text: t("receipt_title") }),
    el("p", { cls: "strong", text: t(change.granted ? "receipt_grant" : "receipt_withdraw", { title }) }),
    el("dl", {},
      el("dt", { text: t("receipt_id") }), el("dd", { cls: "mono receipt-id", text: change.receipt.receipt_id }),
      el("dt", { text: t("recorded_at") }), el("dd", { text: formatTime(change.receipt.recorded_at) }),
      el("dt", { text: t("notice_version", { version: "" }).trim() }),
      el("dd", { cls: "mono", text: change.receipt.notice_version || "—" })),
  );
  show(box, true);
}

function renderHistory(ctx, events) {
  const { t } = ctx;
  const items = [...events].reverse().map((e) => el("li", { attrs: { "data-receipt-id": e.receipt_id } },
    el("span", { cls: `h-action h-${e.action}`, text: t(`h_${e.action}`) }),
    el("span", { text: ` ${t(`purpose_${e.purpose}`)} · ${t(`dt_${e.data_type}`)}` }),
    el("span", { cls: "muted", text: ` · ${formatTime(e.recorded_at)} · ${t(`h_actor_${e.actor}`)}`
      + (e.reason ? ` (${t(`h_reason_${e.reason}`)})` : "") }),
    el("span", { cls: "mono small block", text: e.receipt_id })));
  $("history").replaceChildren(...(items.length ? items : [el("li", { cls: "muted", text: t("history_empty") })]));
}
