// The open alert, drawn from the API's AlertDetail: header facts (and, loudly, a person asking for help),
// which actions apply, the evidence, the timeline and the chart's legend (the notifications are drawn by
// notification-view.js). Rendering only: no fetching, no state.

import { bandText } from "./chart.js";
import { $, age, chip, el, fillTable, formatTime, number, shortTime, show } from "./dom.js";
import { label, reasonText, t } from "./i18n.js";

export function urgentChip() {
  const node = chip("urgent", "yes", t("urgent"));
  node.title = t("urgent_title");
  return node;
}

/** The person answered a check-in with "I need help" or "please call me": say so above everything else. */
function renderUrgent(alert) {
  const banner = $("d-urgent");
  show(banner, alert.urgent);
  if (!alert.urgent) return;
  const reply = [...alert.timeline].reverse().find((e) => e.action === "person_replied"
    && ["help", "call"].includes((e.detail || {}).answer));
  const answer = reply ? reply.detail.answer : null;
  banner.dataset.answer = answer || "";
  banner.textContent = answer
    ? t(`urgent_banner_${answer}`, { when: `${shortTime(reply.at)}, ${age(reply.at)}` }) : t("urgent_banner");
}

export function renderHeader(alert) {
  const article = $("detail");
  article.dataset.alertId = alert.id;
  article.dataset.status = alert.status;
  $("d-title").textContent = `${alert.person} · ${label("feat", alert.feature)}`;
  const status = chip("st", alert.status, label("st", alert.status));
  status.id = "d-status";
  $("d-chips").replaceChildren(...[
    status,
    chip("sev", alert.severity, label("sev", alert.severity)),
    el("span", { cls: "chip", text: label("tier", alert.tier) }),
    alert.kind !== "health" ? el("span", { cls: "chip", text: label("kind_label", alert.kind) }) : null,
    alert.urgent ? urgentChip() : null,
    alert.data_hidden ? el("span", { cls: "chip", text: t("chip_data_hidden"), attrs: { "data-hidden-data": "" } })
      : null,
  ].filter(Boolean));
  renderUrgent(alert);
  $("d-opened").replaceChildren(
    el("span", { text: formatTime(alert.opened_at) }), " ",
    el("span", { cls: "muted paren", text: age(alert.opened_at), attrs: { "data-age": alert.opened_at } }));
  $("d-episode").textContent = `${formatTime(alert.episode_start)} – ${formatTime(alert.episode_end)}`;
  $("d-assignee").textContent = alert.assignee || t("unassigned");
  show($("d-resolution-row"), Boolean(alert.resolution));
  $("d-resolution").textContent = alert.resolution
    ? `${label("res", alert.resolution)}${alert.resolution_note ? ` — ${alert.resolution_note}` : ""}` : "";
  show($("d-escalation-row"), Boolean(alert.next_escalation_at));
  $("d-escalation").textContent = alert.next_escalation_at
    ? `${formatTime(alert.next_escalation_at)} (${age(alert.next_escalation_at)})` : "";
  $("d-reason").textContent = reasonText(alert.reason_code, alert.details, alert.summary);
}

/**
 * Enable the actions the alert's status allows (the service decides in the end; a stale page gets a 409).
 * ``mine``: assigned to the signed-in staff member; ``supervises``: a supervisor or tenant admin.
 */
export function renderActions(alert, { mine, supervises }) {
  const s = alert.status;
  const active = s !== "resolved";
  const mayAct = alert.assignee === null || mine || supervises;
  $("a-claim").disabled = !(s === "open" || (active && !mine && supervises));
  $("a-contact").disabled = !((s === "claimed" || s === "contacted") && (mine || supervises));
  $("a-resolve").disabled = !(active && mayAct);
  $("a-reopen").disabled = s !== "resolved";
  $("a-reach-out").disabled = !active;  // the service refuses without the person's outreach consent (409)
  show($("a-reassign"), supervises);
  $("a-reassign").disabled = !(active && supervises);
  for (const [form, button] of [["contact-form", "a-contact"], ["resolve-form", "a-resolve"], ["reassign-form", "a-reassign"]]) {
    if ($(button).disabled) show($(form), false);
  }
}

const EVIDENCE_COLUMNS = ["ev_when", "ev_tier", "ev_value", "ev_baseline", "ev_reason"];

export function renderEvidence(evidence) {
  const rows = evidence.map((e) => el("tr", { attrs: { "data-event-id": String(e.id) } },
    el("td", { cls: "nowrap", text: `${shortTime(e.start_time)} – ${shortTime(e.end_time)}` }),
    el("td", { text: label("tier", e.tier) }),
    el("td", { cls: "num", text: number(e.value) }),
    el("td", { cls: "num", text: number(e.baseline) }),
    el("td", { text: e.withdrawn ? `${e.reason} — ${t("ev_withdrawn")}` : e.reason })));
  fillTable("evidence", EVIDENCE_COLUMNS, rows);
  const note = $("evidence-withdrawn");
  if (note) {
    note.textContent = t("ev_all_withdrawn");
    show(note, evidence.length > 0 && evidence.every((e) => e.withdrawn));
  }
}

function timelineDetail(entry) {
  const d = entry.detail || {};
  const parts = [];
  if (d.reason && entry.action === "resolve") parts.push(label("res", d.reason));
  else if (d.reason) parts.push(d.reason);
  if (d.answer) parts.push(t("tl_answer", { answer: label("answer", d.answer) }));
  if (d.held_until) {
    parts.push(t("tl_held", { time: formatTime(d.held_until), reason: label("held", d.held_reason) }));
  }
  if (d.assignee) parts.push(`→ ${d.assignee}`);
  if (d.step) parts.push(d.step);
  if (d.note) parts.push(`“${d.note}”`);
  return parts.join(" · ");
}

export function renderTimeline(timeline) {
  const items = timeline.map((entry) => {
    const change = entry.from_status && entry.to_status && entry.from_status !== entry.to_status
      ? `${label("st", entry.from_status)} → ${label("st", entry.to_status)}` : "";
    const who = `${label("actor", entry.actor_kind)} ${entry.actor_id}`;
    const detail = timelineDetail(entry);
    const attrs = { "data-action": entry.action };
    if (entry.detail && entry.detail.answer) attrs["data-answer"] = entry.detail.answer;
    return el("li", { attrs },
      el("div", { cls: "tl-head" },
        el("span", { cls: "tl-action", text: label("act", entry.action) }),
        el("span", { cls: "tl-when muted", text: shortTime(entry.at), attrs: { title: formatTime(entry.at) } })),
      el("div", { cls: "tl-who muted", text: [t("by", { who }), change].filter(Boolean).join(" · ") }),
      detail ? el("div", { cls: "tl-detail", text: detail }) : null);
  });
  $("timeline").replaceChildren(...items);
}

/** The chart's heading and its legend, which says plainly what each drawn thing is. */
export function renderChartLabels(alert, spec, { from, to } = {}) {
  $("chart-title").textContent = t("chart_heading", { metric: label("m", alert.metric) });
  $("chart-range").textContent = from === undefined ? "" : t("chart_range", {
    from: formatTime(new Date(from).toISOString(), { dateStyle: "medium" }),
    to: formatTime(new Date(to).toISOString(), { dateStyle: "medium" }),
    bucket: t(`bucket_${spec.bucket}`),
  });
  const hasBaseline = alert.evidence.some((e) => e.baseline !== null && e.baseline !== undefined);
  const legend = [el("li", {
    cls: "lg-episode", text: t("lg_episode", { from: shortTime(alert.episode_start), to: shortTime(alert.episode_end) }),
  })];
  if (hasBaseline) {
    legend.push(el("li", { cls: "lg-baseline", text: t("lg_baseline") }));
    if (spec.band) {
      legend.push(el("li", { cls: "lg-band", text: t(spec.log ? "lg_band_log" : "lg_band", { band: bandText(spec) }) }));
    }
  } else {
    legend.push(el("li", { cls: "lg-none", text: t("lg_no_baseline") }));
  }
  $("chart-legend").replaceChildren(...legend);
}
