// The readings chart of an alert: the person's recent values (uPlot, vendored), the personal baseline the
// detector compared them with, and the anomalous stretch. uPlot is loaded as a classic script before
// this module and is found on window.

import { language, t } from "./i18n.js";

/**
 * How each metric is charted, from GET /v1/data-types (see setDataTypes). ``bucket``: the series' bucket;
 * ``total``: plot the bucket's sum (avg × count) because the detector works on daily totals (steps, sleep).
 * ``band`` is the smallest change the detector counts for the metric's feature; ``log`` means that change
 * is on a log scale (a fraction).
 */
export const METRIC_CHART = {};

/** Take each data type's chart settings from the service's description of it. */
export function setDataTypes(types) {
  for (const type of types) {
    const { bucket, unit, band, log, total } = type.chart;
    METRIC_CHART[type.name] = { bucket, unit, band, log, total };
  }
}
const FALLBACK = { bucket: "1h", unit: "", band: 0 };
const DAY_S = 86400;

/**
 * Why the chart of ``alert`` (or the ``series`` read for it) shows no readings by design, as a label key, or
 * null: without the person's monitoring consent in force the service withholds the values, and a request for
 * help carries no health data at all.
 */
export function hiddenChart(alert, series = null) {
  if (alert.kind === "help_request") return "chart_help_request";
  if (alert.data_hidden || (series && series.data_hidden)) return "chart_data_hidden";
  return null;
}

export function chartSpec(metric) {
  return METRIC_CHART[metric] || FALLBACK;
}

/** The window the chart asks for: 14 days before the episode began, through now (at most 400 days). */
export function chartWindow(alert, now = Date.now()) {
  const to = now;
  let from = Date.parse(alert.episode_start) - 14 * DAY_S * 1000;
  from = Math.max(from, to - 399 * DAY_S * 1000);
  return { from: Math.min(from, to - 3600 * 1000), to };
}

/** The band around a baseline as [low, high]. */
function bandAround(b, spec) {
  if (!spec.band) return [b, b];
  return spec.log ? [(b + 1) * Math.exp(-spec.band) - 1, (b + 1) * Math.exp(spec.band) - 1]
    : [b - spec.band, b + spec.band];
}

export function bandText(spec) {
  if (!spec.band) return "";
  if (spec.log) {
    return `−${Math.round(100 * (1 - Math.exp(-spec.band)))} % / +${Math.round(100 * (Math.exp(spec.band) - 1))} %`;
  }
  return `${spec.band} ${spec.unit}`;
}

/** Each evidence event's baseline as a step: from its start until the next event (the first reaches back). */
function baselineSteps(evidence, from, to) {
  const events = evidence.filter((e) => e.baseline !== null && e.baseline !== undefined)
    .map((e) => ({ at: Date.parse(e.start_time) / 1000, value: e.baseline }))
    .sort((a, b) => a.at - b.at);
  return events.map((e, i) => ({
    x0: i === 0 ? from : e.at,
    x1: i + 1 < events.length ? events[i + 1].at : to,
    value: e.value,
  }));
}

const COLORS = {
  line: "#1d4ed8",
  range: "rgba(29, 78, 216, 0.14)",
  baseline: "#15803d",
  band: "rgba(21, 128, 61, 0.13)",
  episode: "rgba(220, 38, 38, 0.13)",
  episodeEdge: "rgba(220, 38, 38, 0.55)",
};

function number(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return new Intl.NumberFormat(language(), { maximumFractionDigits: digits }).format(v);
}

function axisDates(u, splits, axisIdx, space, incr) {
  const lang = language();
  const day = new Intl.DateTimeFormat(lang, { month: "numeric", day: "numeric" });
  const time = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return splits.map((s) => {
    const d = new Date(s * 1000);
    if (incr >= DAY_S) return day.format(d);
    return d.getHours() === 0 && d.getMinutes() === 0 ? day.format(d) : time.format(d);
  });
}

/**
 * Draw the chart into ``container`` (emptied first). Returns the uPlot instance (or null when there is
 * nothing to draw), so the caller can resize or destroy it. ``episode`` ({start, end}) may be null;
 * ``minWidth`` and ``height`` suit a phone when smaller than the laptop defaults.
 */
export function drawChart(container, { points, spec, evidence, episode, from, to, minWidth = 300, height = 210 }) {
  container.replaceChildren();
  if (!points.length || typeof window.uPlot !== "function") return null;
  const fromS = from / 1000;
  const toS = to / 1000;
  const xs = points.map((p) => Date.parse(p.time) / 1000);
  const steps = baselineSteps(evidence, fromS, toS);
  // The anomalous stretch is optional: a person's own chart may have no alert to mark.
  const episodeS = episode ? [Date.parse(episode.start) / 1000, Date.parse(episode.end) / 1000] : null;
  const fmt = (unit) => (u, v) => (v === null || v === undefined ? "—" : `${number(v)} ${unit}`);
  const when = new Intl.DateTimeFormat(language(), { dateStyle: "medium", timeStyle: "short" });

  let data;
  let series;
  let bands = [];
  if (spec.total) {
    data = [xs, points.map((p) => p.avg * p.count)];
    series = [{ label: t("ev_when"), value: (u, v) => (v == null ? "—" : when.format(new Date(v * 1000))) },
      { label: t("lg_total"), stroke: COLORS.line, width: 2, value: fmt(spec.unit), points: { show: true, size: 6 } }];
  } else {
    data = [xs, points.map((p) => p.avg), points.map((p) => p.min), points.map((p) => p.max)];
    series = [
      { label: t("ev_when"), value: (u, v) => (v == null ? "—" : when.format(new Date(v * 1000))) },
      { label: t("lg_avg"), stroke: COLORS.line, width: 1.5, value: fmt(spec.unit) },
      { label: t("lg_min"), stroke: "rgba(29, 78, 216, 0.25)", width: 0.5, value: fmt(spec.unit) },
      { label: t("lg_max"), stroke: "rgba(29, 78, 216, 0.25)", width: 0.5, value: fmt(spec.unit) },
    ];
    bands = [{ series: [3, 2], fill: COLORS.range }];
  }

  const yExtent = [];
  for (const s of steps) yExtent.push(...bandAround(s.value, spec));

  function underlay(u) {
    const { ctx } = u;
    const { top, height, left, width } = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    if (episodeS) {
      const e0 = u.valToPos(episodeS[0], "x", true);
      const e1 = Math.max(u.valToPos(episodeS[1], "x", true), e0 + 3);
      ctx.fillStyle = COLORS.episode;
      ctx.fillRect(e0, top, e1 - e0, height);
      ctx.strokeStyle = COLORS.episodeEdge;
      ctx.lineWidth = 1;
      for (const x of [e0, e1]) {
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + height);
        ctx.stroke();
      }
    }
    ctx.fillStyle = COLORS.band;
    for (const s of steps) {
      const [lo, hi] = bandAround(s.value, spec);
      const x0 = u.valToPos(s.x0, "x", true);
      const x1 = u.valToPos(s.x1, "x", true);
      const y0 = u.valToPos(hi, "y", true);
      const y1 = u.valToPos(lo, "y", true);
      ctx.fillRect(x0, y0, x1 - x0, y1 - y0);
    }
    ctx.restore();
  }

  function overlay(u) {
    const { ctx } = u;
    ctx.save();
    ctx.strokeStyle = COLORS.baseline;
    ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
    ctx.setLineDash([6 * (window.devicePixelRatio || 1), 4 * (window.devicePixelRatio || 1)]);
    for (const s of steps) {
      const y = u.valToPos(s.value, "y", true);
      ctx.beginPath();
      ctx.moveTo(u.valToPos(s.x0, "x", true), y);
      ctx.lineTo(u.valToPos(s.x1, "x", true), y);
      ctx.stroke();
    }
    ctx.restore();
  }

  const width = Math.max(container.clientWidth, minWidth);
  const opts = {
    width,
    height,
    series,
    bands,
    cursor: { drag: { x: false, y: false } },
    legend: { show: true, live: true },
    scales: {
      x: { time: true, range: () => [fromS, toS] },
      y: {
        range: (u, min, max) => {
          const lo = Math.min(min ?? Infinity, ...yExtent);
          const hi = Math.max(max ?? -Infinity, ...yExtent);
          const pad = Math.max((hi - lo) * 0.08, spec.band && !spec.log ? spec.band / 2 : 1);
          return [spec.total ? Math.max(0, lo - pad) : lo - pad, hi + pad];
        },
      },
    },
    axes: [
      { values: axisDates, stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" } },
      { label: spec.unit, stroke: "#475569", grid: { stroke: "#e2e8f0" }, ticks: { stroke: "#cbd5e1" },
        size: 52, values: (u, splits) => splits.map((v) => number(v)) },
    ],
    hooks: { drawClear: [underlay], draw: [overlay] },
  };
  return new window.uPlot(opts, data, container);
}
