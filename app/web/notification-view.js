// The open alert's notifications: to whom, what for, and where each delivery stands — queued, held (until
// when, and why), sending, sent, failed (with "call instead" when push gave up), cancelled, opened,
// answered (and the answer). Rendering only: no fetching, no state.

import { $, age, chip, el, fillTable, formatTime, shortTime, show } from "./dom.js";
import { label, serviceText, t } from "./i18n.js";

// alerts/sender.py ends a dead letter's status_detail with "… — call instead"; the page makes that stand out.
const CALL_INSTEAD = "call instead";
const HELD_REASONS = ["quiet_hours", "weekly_cap"];
const ASKED_FOR_HELP = ["help", "call"];

/** What the timeline adds about each notification: why a reach-out was held, what the person answered. */
function factsFromTimeline(timeline) {
  const facts = new Map();
  for (const entry of timeline || []) {
    const d = entry.detail || {};
    if (!d.notification_id) continue;
    const f = facts.get(d.notification_id) || {};
    if (entry.action === "reach_out" && d.held_reason) f.heldReason = d.held_reason;
    if (entry.action === "person_replied" && d.answer) f.answer = d.answer;
    facts.set(d.notification_id, f);
  }
  return facts;
}

/** Why a held message waits: the row's own reason if the service gives it, else the sender's status_detail
 * (it holds a message again when quiet hours began after it was queued), else the reach-out's timeline entry. */
function heldReason(n, facts) {
  if (n.held_reason) return n.held_reason;
  if (HELD_REASONS.includes(n.status_detail)) return n.status_detail;
  return facts.heldReason || null;
}

function line(cls, text, ...children) {
  return el("div", { cls: `n-line ${cls}`, text }, ...children);
}

/** A time as the agent's local time, with how far away it is (kept fresh by the page's age refresh). */
function untilLine(cls, key, iso) {
  return line(cls, `${t(key, { time: formatTime(iso) })} `,
    el("span", { cls: "muted paren", text: age(iso), attrs: { "data-age": iso } }));
}

function failedLines(n) {
  const detail = (n.status_detail || "").trim();
  if (!detail.endsWith(CALL_INSTEAD)) return [detail ? line("n-why", serviceText(detail)) : null];
  const cut = detail.indexOf(": ");
  const cause = cut > 0 ? detail.slice(0, cut) : "";
  return [
    line("n-call-instead", t("n_call_instead")),
    cause ? line("n-why muted", serviceText(cause)) : null,
  ];
}

function stateLines(n, facts) {
  switch (n.status) {
    case "held": {
      const reason = heldReason(n, facts);
      return [untilLine("n-until", "n_held_until", n.not_before), reason ? line("n-why", label("held", reason)) : null];
    }
    case "queued": {
      const detail = n.status_detail || "";
      if (detail.startsWith("retrying:")) {
        return [line("n-why", t("n_retrying", { detail: detail.slice("retrying:".length).trim(),
          time: shortTime(n.not_before) }))];
      }
      return Date.parse(n.not_before) > Date.now() + 60_000 ? [untilLine("n-until", "n_due", n.not_before)] : [];
    }
    case "sending":
      return [line("n-why muted", t("n_sending", { n: n.attempts }))];
    case "sent":
      return [line("n-why muted", t("n_sent_at", { time: shortTime(n.updated_at) }))];
    case "opened":
      return [line("n-why muted", t("n_opened_at", { time: shortTime(n.updated_at) }))];
    case "answered": {
      if (!facts.answer) return [];
      const asked = ASKED_FOR_HELP.includes(facts.answer);
      return [line(`n-answer${asked ? " n-asked" : ""}`, t("n_answer", { answer: label("answer", facts.answer) }))];
    }
    case "failed":
      return failedLines(n);
    default:  // cancelled, and any state the page does not know yet
      return [n.status_detail ? line("n-why muted", serviceText(n.status_detail)) : null];
  }
}

const COLUMNS = ["n_recipient", "n_purpose", "n_status", "n_attempts", "n_updated"];

export function renderNotifications(notifications, timeline) {
  const facts = factsFromTimeline(timeline);
  const rows = notifications.map((n) => {
    const f = facts.get(n.id) || {};
    const row = el("tr", { attrs: {
      "data-notification-id": n.id, "data-status": n.status, "data-recipient-kind": n.recipient_kind,
    } },
    el("td", {}, el("span", { cls: "muted", text: label("rk", n.recipient_kind) }), " ",
      el("span", { cls: "nowrap", text: n.recipient || "" })),
    el("td", { text: label("np", n.purpose) }),
    el("td", { cls: "n-state", attrs: n.status_detail ? { title: n.status_detail } : {} },
      chip("ns", n.status, label("ns", n.status)), ...stateLines(n, f).filter(Boolean)),
    el("td", { cls: "num", text: String(n.attempts) }),
    el("td", { cls: "nowrap", text: shortTime(n.updated_at), attrs: { title: formatTime(n.updated_at) } }));
    if (n.status === "failed" && (n.status_detail || "").trim().endsWith(CALL_INSTEAD)) row.dataset.callInstead = "true";
    return row;
  });
  fillTable("notifications", COLUMNS, rows);
  show($("notifications"), notifications.length > 0);
  show($("no-notifications"), notifications.length === 0);
}
