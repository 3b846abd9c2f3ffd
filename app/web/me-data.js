// "My data": for each data type the person shares (monitoring consent in effect), the last 30 days as a
// chart with their personal baseline band (the care page's chart module) and, when an alert was raised,
// why the insurer asked how they are. Nothing is fetched or drawn for a type they do not share.

import { chartSpec, drawChart } from "./chart.js";
import { $, el, formatTime, show } from "./dom.js";
import { reasonText } from "./i18n.js";

const charts = [];

export async function loadData(ctx) {
  const { api, state, t } = ctx;
  show($("data-error"), false);
  destroyCharts();
  $("data-list").replaceChildren();
  if (state.erased) {
    show($("data-none"), true);
    return;
  }
  const overview = await api.consents(null);
  const shared = overview.consents.filter((c) => c.purpose === "monitoring" && c.in_effect).map((c) => c.data_type);
  show($("data-none"), shared.length === 0);
  const results = await Promise.allSettled(shared.map((type) => api.data(type, chartSpec(type).bucket)));
  const cards = results.map((result, i) => {
    if (result.status === "fulfilled") return dataCard(ctx, result.value);
    const card = el("section", { cls: "card data-card", attrs: { "data-type": shared[i] } },
      el("h3", { text: t(`dt_${shared[i]}`) }));
    const error = el("p", { cls: "error", attrs: { role: "alert" } });
    card.append(error);
    ctx.showError(error, result.reason);
    return card;
  });
  $("data-list").replaceChildren(...cards);
  // Drawn once the cards are in the page, so each chart takes its card's width.
  for (const draw of cards.map((c) => c.draw).filter(Boolean)) draw();
}

function dataCard(ctx, data) {
  const { t } = ctx;
  const type = data.data_type;
  const name = t(`dt_${type}`);
  const spec = chartSpec(type);
  const chart = el("div", { cls: "chart", attrs: { "aria-hidden": "true" } });
  const empty = el("p", { cls: "muted chart-empty", text: t("data_no_points", { name }) });
  empty.hidden = data.points.length > 0;
  const withBaseline = data.findings.some((f) => f.baseline !== null);
  const latest = data.alerts[0];
  const legend = el("ul", { cls: "legend" },
    withBaseline ? el("li", { cls: "lg-band", text: t("band_legend") }) : el("li", { cls: "muted", text: t("band_none", { name }) }),
    latest ? el("li", { cls: "lg-episode", text: t("episode_legend") }) : null);
  const card = el("section", { cls: "card data-card", attrs: { "data-type": type, "data-points": String(data.points.length),
    "aria-labelledby": `dh-${type}` } },
  el("h3", { text: name, attrs: { id: `dh-${type}` } }), chart, empty, legend,
  ...data.alerts.map((alert) => alertBox(ctx, alert)));
  card.draw = () => {
    if (!data.points.length) return;
    const made = drawChart(chart, {
      points: data.points, spec, evidence: data.findings,
      episode: latest ? { start: latest.episode_start, end: latest.episode_end } : null,
      from: Date.parse(data.start), to: Date.parse(data.end), minWidth: 240, height: 190,
    });
    if (made) charts.push({ chart: made, container: chart });
  };
  return card;
}

function alertBox(ctx, alert) {
  const { t } = ctx;
  let status = t(`alert_status_${alert.status}`);
  if (alert.status === "resolved" && alert.resolution) status += `: ${t(`res_${alert.resolution}`)}`;
  return el("div", { cls: "why", attrs: { "data-alert-id": alert.id, "data-status": alert.status } },
    el("h4", { text: t(alert.kind === "data_gap" ? "why_gap" : "why_asked") }),
    el("p", { cls: "reason", text: reasonText(alert.reason_code, alert.details, alert.reason) }),
    el("p", { cls: "muted", text: `${formatTime(alert.opened_at)} · ${status}` }),
    alert.urgent && alert.status !== "resolved" ? el("p", { cls: "urgent", text: t("urgent_yes") }) : null);
}

function destroyCharts() {
  for (const { chart } of charts.splice(0)) chart.destroy();
}

export function resizeCharts() {
  for (const { chart, container } of charts) {
    chart.setSize({ width: Math.max(container.clientWidth, 240), height: 190 });
  }
}
