// The alert queue as the API orders it (urgent, then severity, then oldest): one card per alert; a person
// who asked for help stands out.

import { urgentChip } from "./alert-view.js";
import { $, age, chip, el, formatTime, show } from "./dom.js";
import { label, t } from "./i18n.js";

function card(alert, selected) {
  const item = el("li", {
    cls: `queue-item sev-${alert.severity}${alert.urgent ? " urgent" : ""}${selected ? " selected" : ""}`,
    // A listbox of options (not a list of buttons): an <ol> may only hold list items, and the queue is where
    // the agent picks the alert to open.
    attrs: { "data-alert-id": alert.id, "data-status": alert.status, tabindex: "0", role: "option",
      "aria-selected": String(selected) },
  });
  const top = el("div", { cls: "q-top" },
    chip("sev", alert.severity, label("sev", alert.severity)),
    alert.urgent ? urgentChip() : null,
    el("span", { cls: "q-person", text: alert.person }),
    el("span", { cls: "q-feature", text: label("feat", alert.feature) }),
    el("span", { cls: "q-age", text: age(alert.opened_at),
      attrs: { "data-age": alert.opened_at, title: formatTime(alert.opened_at) } }));
  const reason = el("div", { cls: "q-reason", text: alert.summary });
  const bottom = el("div", { cls: "q-bottom" },
    chip("st", alert.status, label("st", alert.status)),
    el("span", { cls: "q-assignee", text: alert.assignee ? t("assigned_to", { who: alert.assignee }) : t("unassigned") }));
  item.append(top, reason, bottom);
  return item;
}

/** Draw the queue; ``more``: the API has a next page; ``loadedAt``: when it was fetched. */
export function renderQueueList(alerts, { selectedId, more, loadedAt }) {
  $("queue").replaceChildren(...alerts.map((alert) => card(alert, alert.id === selectedId)));
  const countKey = more ? "queue_count_more" : alerts.length === 1 ? "queue_count_one" : "queue_count";
  $("queue-count").textContent = t(countKey, { n: alerts.length });
  $("queue-updated").textContent = loadedAt ? t("updated_at", { time: formatTime(loadedAt, { timeStyle: "medium" }) }) : "";
  show($("queue-empty"), alerts.length === 0);
  show($("more"), more);
}
