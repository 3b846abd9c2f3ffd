// "Messages": the check-ins the care team sent, with the reply buttons and what happened next; quiet hours
// and time zone. Showing the list marks unread messages opened (the care team sees "Opened").

import { $, el, formatTime, show } from "./dom.js";
import { reasonText } from "./i18n.js";

const ANSWERS = ["fine", "help", "call"];

export async function loadMessages(ctx) {
  const { api, state } = ctx;
  show($("messages-error"), false);
  if (state.erased) {
    $("message-list").replaceChildren();
    show($("messages-none"), true);
    show($("quiet-form"), false);
    return;
  }
  const [list, quiet, profile] = await Promise.all([api.messages(), api.quietHours(), api.profile()]);
  state.profile = profile;
  show($("messages-none"), list.messages.length === 0);
  $("message-list").replaceChildren(...list.messages.map((m) => messageItem(ctx, m)));
  fillQuietHours(quiet, profile.time_zone);
  // The person has now seen these: tell the care team (GET of a message marks it opened).
  for (const m of list.messages) {
    if (!m.opened_at && !m.answer) api.openMessage(m.id).catch(() => {});
  }
}

function messageItem(ctx, message) {
  const { t } = ctx;
  const item = el("li", { cls: "card message", attrs: { "data-message-id": message.id, "data-status": message.status } },
    el("h3", { text: message.title }),
    el("p", { text: message.body }),
    el("p", { cls: "muted", text: t("msg_sent_at", { when: formatTime(message.created_at) }) }),
    message.reason ? el("p", { cls: "reason", text: t("msg_about", {
      reason: reasonText(message.reason_code, message.details, message.reason) }) }) : null);
  if (message.answer) {
    item.append(el("p", { cls: `answer answer-${message.answer}`,
      text: t("answered", { answer: t(`answer_${message.answer}`), when: formatTime(message.answered_at) }) }));
  } else if (message.alert_status !== "resolved") {
    const error = el("p", { cls: "error", attrs: { role: "alert" } });
    error.hidden = true;
    const buttons = ANSWERS.map((answer) => el("button", { cls: answer === "fine" ? "" : "primary",
      text: t(`answer_${answer}`), attrs: { type: "button", "data-answer": answer } }));
    for (const button of buttons) {
      button.addEventListener("click", async () => {
        for (const b of buttons) b.disabled = true;
        try {
          await ctx.api.reply(message.id, button.dataset.answer);
          await loadMessages(ctx);
        } catch (err) {
          ctx.showError(error, err);
          for (const b of buttons) b.disabled = false;
        }
      });
    }
    item.append(el("p", { cls: "strong", text: t("answer_prompt") }), el("div", { cls: "buttons answers" }, ...buttons), error);
  }
  const next = whatNext(ctx, message);
  if (next) item.append(el("div", { cls: "next" }, el("h4", { text: t("next_title") }), el("p", { cls: "next-text", text: next })));
  return item;
}

function whatNext(ctx, message) {
  const { t } = ctx;
  if (message.alert_status === null || message.alert_status === undefined) return null;
  if (message.alert_status === "resolved") {
    const how = message.alert_resolution ? `: ${t(`res_${message.alert_resolution}`)}` : "";
    return `${t("alert_status_resolved")}${how}`;
  }
  if (message.answer === "help" || message.answer === "call") return `${t("next_help")} ${t(`alert_status_${message.alert_status}`)}.`;
  return message.answer ? t(`alert_status_${message.alert_status}`) : null;
}

function fillQuietHours(quiet, zone) {
  $("quiet-start").value = quiet.start.slice(0, 5);
  $("quiet-end").value = quiet.end.slice(0, 5);
  const select = $("time-zone");
  if (!select.options.length) {
    const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
    const all = [...new Set(["Asia/Shanghai", "Asia/Hong_Kong", "UTC", ...zones, zone])];
    select.replaceChildren(...all.map((z) => el("option", { text: z, attrs: { value: z } })));
  }
  if (![...select.options].some((o) => o.value === zone)) select.append(el("option", { text: zone, attrs: { value: zone } }));
  select.value = zone;
  show($("quiet-form"), true);
}

export function wireQuietHours(ctx) {
  $("quiet-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("quiet-status");
    status.classList.remove("error");
    status.textContent = ctx.t("saving");
    try {
      await ctx.api.setQuietHours({ start: $("quiet-start").value, end: $("quiet-end").value });
      if ($("time-zone").value !== ctx.state.profile.time_zone) {
        ctx.state.profile = await ctx.api.setProfile({ time_zone: $("time-zone").value });
      }
      status.textContent = ctx.t("saved");
    } catch (err) {
      status.textContent = ctx.errorText(err);
      status.classList.add("error");
    }
  });
}
