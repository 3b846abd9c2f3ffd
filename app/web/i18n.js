// Every label the page shows, in English and Simplified Chinese. Text that comes from the service (the
// detector's reason, notes typed by agents) is shown as it was written.

import { pageLabels } from "./i18n-core.js";

const en = {
  title: "Health Beidou · Care queue",
  brand: "Health Beidou",
  app_name: "Care queue",
  other_lang: "中文",
  other_lang_title: "切换到中文",
  logout: "Log out",
  outcomes_link: "Outcomes",
  signed_in_as: "{who} ({role})",
  login_title: "Sign in with your staff token",
  login_help: "Paste the bearer token your identity provider gave you. It stays in this browser tab only and is forgotten when you log out or close the tab.",
  token_label: "Staff token",
  login: "Sign in",
  checking: "Checking…",
  token_empty: "Paste a token first.",
  token_not_staff: "This token is not a care staff token.",
  session_expired: "Your session has ended ({detail}). Paste a new token to go on.",
  logged_out: "You are logged out. The token was forgotten.",
  live: "Live",
  live_title: "New alerts appear as they happen.",
  offline: "Reconnecting… (checking every 30 s)",
  offline_title: "The live feed is down; the queue is refreshed every 30 seconds until it is back.",
  filters: "Filters",
  f_status: "Status",
  f_severity: "Severity",
  f_assignee: "Assignee",
  f_kind: "Kind",
  status_active: "Not resolved",
  any: "Any",
  assignee_me: "Me",
  kind_health: "Health",
  kind_data_gap: "Data gaps",
  kind_both: "Health and data gaps",
  refresh: "Refresh",
  load_more: "Load more",
  queue_count: "{n} alerts",
  queue_count_one: "1 alert",
  queue_count_more: "{n}+ alerts",
  queue_empty: "No alerts match these filters.",
  queue_label: "Alert queue",
  updated_at: "Updated {time}",
  pick_alert: "Choose an alert from the queue to see its evidence, timeline and readings.",
  loading: "Loading…",
  urgent: "Asked for help",
  urgent_title: "The member answered a check-in asking for help or a call.",
  urgent_banner_help: "The member answered “I need help” ({when}). Call them now.",
  urgent_banner_call: "The member asked “Please call me” ({when}). Call them now.",
  urgent_banner: "The member asked for help. Call them now.",
  unassigned: "Unassigned",
  assigned_to: "Assigned to {who}",
  person: "Person",
  opened: "Opened",
  episode: "Episode",
  assignee: "Assignee",
  resolution: "Resolution",
  next_escalation: "Next escalation",
  none: "—",
  reason_heading: "Why the detector flagged this",
  actions: "Actions",
  claim: "Claim",
  contact: "Record contact",
  resolve: "Resolve",
  reassign: "Reassign",
  reopen: "Reopen",
  reach_out: "Reach out",
  reach_out_title: "Send the member a check-in push asking whether they need help. It waits for their quiet hours and the weekly limit.",
  reach_out_refused: "The check-in was not sent: {detail}. Call the member instead.",
  note: "Note",
  note_optional: "Note (optional)",
  contact_note_ph: "e.g. called, no answer; left a message",
  resolve_reason: "Reason",
  choose_reason: "Choose a reason…",
  reason_required: "Choose a reason before resolving.",
  reassign_to: "Staff id",
  reassign_required: "Enter the staff id to hand the alert to.",
  save_contact: "Save contact",
  save_resolve: "Resolve alert",
  save_reassign: "Hand over",
  cancel: "Cancel",
  working: "Saving…",
  done_claim: "Claimed.",
  done_contact: "Contact recorded.",
  done_resolve: "Resolved.",
  done_reassign: "Handed over.",
  done_reopen: "Reopened.",
  done_reach_out: "Check-in queued.",
  chart_heading: "Recent readings: {metric}",
  chart_empty: "No {metric} readings in this period.",
  chart_range: "{from} – {to}, {bucket}",
  bucket_1h: "hourly",
  bucket_1d: "daily",
  lg_avg: "Hourly average",
  lg_range: "Hourly lowest–highest",
  lg_total: "Daily total (UTC day)",
  lg_min: "lowest",
  lg_max: "highest",
  lg_baseline: "Personal baseline: the value each evidence event was compared with",
  lg_band: "Shaded: baseline ± {band}, the smallest change the detector counts (a guide, not a normal range)",
  lg_band_log: "Shaded: baseline {band}, the smallest change the detector counts (a guide, not a normal range)",
  lg_no_baseline: "No personal baseline in this alert's evidence.",
  lg_episode: "Anomalous stretch ({from} – {to})",
  evidence: "Evidence",
  ev_when: "When",
  ev_tier: "Tier",
  ev_value: "Value",
  ev_baseline: "Baseline",
  ev_withdrawn: "its readings were deleted on the person's phone",
  ev_all_withdrawn: "Every reading behind this alert was deleted on the person's phone: the evidence is gone.",
  ev_reason: "Reason",
  timeline: "Timeline",
  notifications: "Notifications",
  no_notifications: "No notifications yet.",
  n_recipient: "To",
  n_purpose: "Purpose",
  n_status: "Status",
  n_attempts: "Tries",
  n_updated: "Updated",
  n_held_until: "until {time}",
  n_due: "due {time}",
  n_retrying: "retrying after {detail}, next try {time}",
  n_sending: "handing to the push service (try {n})",
  n_sent_at: "accepted by the push service {time}",
  n_opened_at: "opened {time}",
  n_answer: "answer: “{answer}”",
  n_call_instead: "Push did not reach them — call instead",
  held_quiet_hours: "the member's quiet hours",
  held_weekly_cap: "weekly limit of check-ins reached",
  tl_answer: "Answer: “{answer}”",
  tl_held: "held until {time} ({reason})",
  by: "by {who}",
  err_401: "Not signed in: {detail}",
  err_403: "Not allowed: {detail}",
  err_404: "Not found: {detail}",
  err_409: "Someone got there first or the alert has moved on: {detail}",
  err_422: "The service refused the request: {detail}",
  err_503: "The database is unavailable; nothing was changed. Try again shortly. ({detail})",
  err_other: "Error {status}: {detail}",
  err_network: "Cannot reach the service. Check the connection and try again.",
  just_now: "just now",
  min_ago: "{n} min ago",
  h_ago: "{n} h ago",
  h_min_ago: "{h} h {m} min ago",
  d_ago: "{n} d ago",
  in_future: "in {n} min",
  in_h: "in {n} h",
  // Feature (feat_*) and chart (m_*) names of the data types come from GET /v1/data-types: addDataTypes().
  feat_wear: "Device not worn",
};

const zh = {
  title: "健康北斗 · 关怀队列",
  brand: "健康北斗",
  app_name: "关怀队列",
  other_lang: "English",
  other_lang_title: "Switch to English",
  logout: "退出登录",
  outcomes_link: "关怀成效",
  signed_in_as: "{who}（{role}）",
  login_title: "使用员工令牌登录",
  login_help: "粘贴身份提供方发给您的 Bearer 令牌。令牌只保存在当前浏览器标签页中，退出登录或关闭标签页后即被清除。",
  token_label: "员工令牌",
  login: "登录",
  checking: "正在验证…",
  token_empty: "请先粘贴令牌。",
  token_not_staff: "该令牌不是关怀团队员工的令牌。",
  session_expired: "您的会话已结束（{detail}）。请粘贴新的令牌继续。",
  logged_out: "您已退出登录，令牌已清除。",
  live: "实时",
  live_title: "新警报会即时出现。",
  offline: "正在重新连接…（每 30 秒刷新一次）",
  offline_title: "实时推送已断开；恢复之前每 30 秒刷新一次队列。",
  filters: "筛选",
  f_status: "状态",
  f_severity: "严重程度",
  f_assignee: "负责人",
  f_kind: "类型",
  status_active: "未解决",
  any: "全部",
  assignee_me: "我",
  kind_health: "健康",
  kind_data_gap: "数据中断",
  kind_both: "健康和数据中断",
  refresh: "刷新",
  load_more: "加载更多",
  queue_count: "{n} 条警报",
  queue_count_one: "1 条警报",
  queue_count_more: "{n}+ 条警报",
  queue_empty: "没有符合筛选条件的警报。",
  queue_label: "警报队列",
  updated_at: "更新于 {time}",
  pick_alert: "从队列中选择一条警报，查看证据、时间线和读数。",
  loading: "加载中…",
  urgent: "请求帮助",
  urgent_title: "成员在回复问候时请求帮助或回电。",
  urgent_banner_help: "成员回复“我需要帮助”（{when}）。请立即致电。",
  urgent_banner_call: "成员请求“请给我打电话”（{when}）。请立即致电。",
  urgent_banner: "成员请求帮助。请立即致电。",
  unassigned: "未分配",
  assigned_to: "负责人：{who}",
  person: "成员",
  opened: "创建时间",
  episode: "异常时段",
  assignee: "负责人",
  resolution: "处理结果",
  next_escalation: "下次升级",
  none: "—",
  reason_heading: "检测器标记的原因",
  actions: "操作",
  claim: "认领",
  contact: "记录联系",
  resolve: "解决",
  reassign: "转派",
  reopen: "重新打开",
  reach_out: "发送关怀问候",
  reach_out_title: "向成员推送一条问候，询问是否需要帮助。会等到成员的免打扰时段结束，并遵守每周次数上限。",
  reach_out_refused: "问候未发送：{detail}。请改为电话联系成员。",
  note: "备注",
  note_optional: "备注（可选）",
  contact_note_ph: "例如：已致电，无人接听；已留言",
  resolve_reason: "原因",
  choose_reason: "请选择原因…",
  reason_required: "解决前请选择原因。",
  reassign_to: "员工编号",
  reassign_required: "请输入接手员工的编号。",
  save_contact: "保存联系记录",
  save_resolve: "解决警报",
  save_reassign: "转交",
  cancel: "取消",
  working: "正在保存…",
  done_claim: "已认领。",
  done_contact: "已记录联系。",
  done_resolve: "已解决。",
  done_reassign: "已转交。",
  done_reopen: "已重新打开。",
  done_reach_out: "问候已排队发送。",
  chart_heading: "近期读数：{metric}",
  chart_empty: "此期间没有{metric}读数。",
  chart_range: "{from} – {to}，{bucket}",
  bucket_1h: "按小时",
  bucket_1d: "按天",
  lg_avg: "每小时平均值",
  lg_range: "每小时最低–最高",
  lg_total: "每日合计（UTC 日）",
  lg_min: "最低",
  lg_max: "最高",
  lg_baseline: "个人基线：每条证据比较时所用的数值",
  lg_band: "阴影：基线 ± {band}，即检测器认定的最小变化（仅供参考，并非正常范围）",
  lg_band_log: "阴影：基线 {band}，即检测器认定的最小变化（仅供参考，并非正常范围）",
  lg_no_baseline: "该警报的证据中没有个人基线。",
  lg_episode: "异常时段（{from} – {to}）",
  evidence: "证据",
  ev_when: "时间",
  ev_tier: "级别",
  ev_value: "数值",
  ev_baseline: "基线",
  ev_withdrawn: "其读数已在本人手机上删除",
  ev_all_withdrawn: "该警报依据的所有读数均已在本人手机上删除：证据已不存在。",
  ev_reason: "原因",
  timeline: "时间线",
  notifications: "通知",
  no_notifications: "暂无通知。",
  n_recipient: "接收人",
  n_purpose: "用途",
  n_status: "状态",
  n_attempts: "尝试次数",
  n_updated: "更新时间",
  n_held_until: "暂缓至 {time}",
  n_due: "计划于 {time} 发送",
  n_retrying: "{detail} 后重试，下次尝试 {time}",
  n_sending: "正在交给推送服务（第 {n} 次）",
  n_sent_at: "推送服务已于 {time} 接收",
  n_opened_at: "已于 {time} 打开",
  n_answer: "回复：“{answer}”",
  n_call_instead: "推送未送达——请改为电话联系",
  held_quiet_hours: "成员的免打扰时段",
  held_weekly_cap: "已达每周问候上限",
  tl_answer: "回复：“{answer}”",
  tl_held: "暂缓至 {time}（{reason}）",
  by: "操作人：{who}",
  err_401: "未登录：{detail}",
  err_403: "无权操作：{detail}",
  err_404: "未找到：{detail}",
  err_409: "已有他人处理，或警报状态已变化：{detail}",
  err_422: "服务拒绝了该请求：{detail}",
  err_503: "数据库暂不可用，未做任何更改。请稍后重试。（{detail}）",
  err_other: "错误 {status}：{detail}",
  err_network: "无法连接服务。请检查网络后重试。",
  just_now: "刚刚",
  min_ago: "{n} 分钟前",
  h_ago: "{n} 小时前",
  h_min_ago: "{h} 小时 {m} 分钟前",
  d_ago: "{n} 天前",
  in_future: "{n} 分钟后",
  in_h: "{n} 小时后",
  feat_wear: "设备未佩戴",
};

// The service's codes in words, English then Chinese, one entry a code: label(prefix, code) reads them as
// ``<prefix>_<code>``.
const CODE_NAMES = {
  role: { care_agent: ["care agent", "关怀专员"], care_supervisor: ["supervisor", "主管"],
    tenant_admin: ["tenant admin", "租户管理员"] },
  st: { open: ["Open", "待处理"], claimed: ["Claimed", "已认领"], contacted: ["Contacted", "已联系"],
    resolved: ["Resolved", "已解决"] },
  sev: { critical: ["Critical", "危急"], high: ["High", "高"], low: ["Low", "低"], info: ["Info", "提示"] },
  tier: { watch: ["Watch", "关注"], alert: ["Alert", "警报"] },
  kind_label: { health: ["Health", "健康"], data_gap: ["Data gap", "数据中断"] },
  res: { needed_help: ["Needed help", "需要帮助"], member_fine: ["Member is fine", "成员状况良好"],
    false_alarm: ["False alarm", "误报"], no_response: ["No response", "无回应"],
    consent_withdrawn: ["Consent withdrawn", "已撤回同意"] },
  act: { opened: ["Opened", "创建"], extended: ["Extended by new evidence", "新增证据"],
    severity_raised: ["Severity raised", "严重程度提高"], claim: ["Claimed", "认领"], contact: ["Contact recorded", "记录联系"],
    resolve: ["Resolved", "解决"], reassign: ["Reassigned", "转派"], reopen: ["Reopened", "重新打开"],
    escalated: ["Escalated", "升级"], reach_out: ["Reached out (check-in push)", "已发起关怀问候（推送）"],
    message_opened: ["Member opened the message", "成员已打开消息"], person_replied: ["Member replied", "成员已回复"] },
  actor: { system: ["system", "系统"], staff: ["staff", "员工"], person: ["member", "成员"] },
  ns: { queued: ["Queued", "排队中"], held: ["Held", "暂缓"], sending: ["Sending", "发送中"], sent: ["Sent", "已发送"],
    failed: ["Failed", "失败"], cancelled: ["Cancelled", "已取消"], opened: ["Opened", "已打开"],
    answered: ["Answered", "已回复"] },
  np: { escalation: ["Escalation", "升级通知"], check_in: ["Check-in", "问候"], reconnect: ["Reconnect device", "重新连接设备"],
    person_replied: ["Member replied", "成员回复"] },
  rk: { staff: ["staff", "员工"], person: ["member", "成员"] },
  answer: { fine: ["I'm fine", "我很好"], help: ["I need help", "我需要帮助"], call: ["Please call me", "请给我打电话"] },
};
for (const [prefix, codes] of Object.entries(CODE_NAMES)) {
  for (const [code, [english, chinese]] of Object.entries(codes)) {
    en[`${prefix}_${code}`] = english;
    zh[`${prefix}_${code}`] = chinese;
  }
}

// Fixed sentences the service writes (alerts/outreach.py, alerts/sender.py) that the page can translate;
// anything else from the service is shown as it was written.
const SERVICE_ZH = {
  "the person has not agreed to be contacted about this data (no outreach consent)":
    "该成员未同意就此类数据接受联系（无外联同意）",
  "the alert is resolved": "该警报已解决",
  "the alert was resolved": "警报已解决",
  "outreach consent withdrawn": "成员已撤回外联同意",
  "no device registered": "未注册接收推送的设备",
  "push is not configured": "推送服务未配置",
  "no result": "无结果",
};

// Consent-aware views and requests for help: what staff see when the person's data may not be shown.
Object.assign(en, {
  chart_data_hidden: "Consent withdrawn — data hidden. The person's monitoring consent for this data type is not in force, so its readings are not shown.",
  chart_help_request: "A request for help carries no health data.",
  chip_data_hidden: "data hidden",
  kind_label_help_request: "request for help",
  feat_help_request: "asked for help",
});
Object.assign(zh, {
  chart_data_hidden: "已撤回同意 — 数据已隐藏。此人对该数据类型的健康监测同意已不再有效，因此不显示其数据。",
  chart_help_request: "求助请求不包含任何健康数据。",
  chip_data_hidden: "数据已隐藏",
  kind_label_help_request: "求助",
  feat_help_request: "请求帮助",
});

const TABLES = { en, "zh-CN": zh };
export const { language, pickLanguage, setLanguage, t, translatePage } = pageLabels(TABLES);

/**
 * Take the data types' names from the service (GET /v1/data-types): ``m_<type>`` is the chart label and
 * ``feat_<feature>`` the detector feature's name, in every language the service describes them in.
 */
export function addDataTypes(types) {
  for (const type of types) {
    for (const [lang, text] of Object.entries(type.chart.labels)) {
      if (TABLES[lang]) TABLES[lang][`m_${type.name}`] = text;
    }
    for (const feature of type.features) {
      for (const [lang, text] of Object.entries(feature.labels)) {
        if (TABLES[lang]) TABLES[lang][`feat_${feature.name}`] = text;
      }
    }
  }
}

/** A code from the service (status, action, feature…) in words; unknown codes are shown as they are. */
export function label(prefix, code) {
  if (code === null || code === undefined || code === "") return t("none");
  return t(`${prefix}_${code}`, {}, String(code).replaceAll("_", " "));
}

/** A sentence written by the service, in the page's language when the page knows it. */
export function serviceText(text) {
  if (text === null || text === undefined) return "";
  return language() === "zh-CN" ? SERVICE_ZH[text] ?? text : text;
}

// ---- Detection reasons (structured reason from the detector: reason_code + details) ------------------------
// One block: the detector sends the reason as data; this renders it in the page's language. The English
// sentence the service wrote is the fallback for any code or signal not known here.
const SIGNALS = {
  overnight_rhr: { en: "overnight resting HR", "zh-CN": "夜间静息心率" },
  day_rhr: { en: "daytime resting HR", "zh-CN": "日间静息心率" },
  device_rhr: { en: "device resting HR", "zh-CN": "设备静息心率" },
  daily_steps: { en: "steps", "zh-CN": "步数" },
  sleep_duration: { en: "sleep", "zh-CN": "睡眠" },
  hrv: { en: "HRV", "zh-CN": "心率变异性" },
  spo2: { en: "SpO2", "zh-CN": "血氧" },
  body_temperature: { en: "temperature", "zh-CN": "体温" },
  respiratory_rate: { en: "respiratory rate", "zh-CN": "呼吸频率" },
  blood_pressure: { en: "systolic blood pressure", "zh-CN": "收缩压" },
  glucose: { en: "glucose", "zh-CN": "血糖" },
};
en.feat_combined = "Several signals together";
zh.feat_combined = "多项指标综合";
const signed = (x, digits) => `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;

function signalText(s, zh) {
  const names = SIGNALS[s.signal];
  if (!names) return null;
  const name = names[zh ? "zh-CN" : "en"];
  const days = Number(s.days || 1);
  const change = Number(s.change || 0);
  const night = s.signal === "overnight_rhr";
  let amount;
  if ((s.signal === "daily_steps" || s.signal === "hrv") && s.baseline) {
    amount = `${signed(100 * (s.value / s.baseline - 1), 0)}%`;
  } else if (s.signal === "sleep_duration") {
    amount = `${signed(change / 60, 1)} ${zh ? "小时" : "h"}`;
  } else {
    amount = `${signed(change, Math.abs(change) < 10 ? 1 : 0)} ${s.unit || ""}`.trim();
  }
  if (zh) return `${name} ${amount}，持续 ${days} ${night ? "晚" : "天"}${night ? `（${s.value}，平时 ${s.baseline}）` : ""}`;
  const span = `${days} ${night ? "night" : "day"}${days === 1 ? "" : "s"}`;
  return `${name} ${amount} for ${span}${night ? ` (${s.value} vs usual ${s.baseline})` : ""}`;
}

/** An alert's reason in the page's language, from its reason_code and details; ``fallback`` when unknown. */
export function reasonText(code, details, fallback) {
  const zh = language() === "zh-CN";
  const d = details || {};
  if (code === "no_data" && d.hours !== undefined) {
    const span = d.hours < 48 ? `${Math.round(d.hours)} ${zh ? "小时" : "hours"}` : `${Math.round(d.hours / 24)} ${zh ? "天" : "days"}`;
    return zh ? `设备已 ${span} 没有数据：手表可能未佩戴或未同步；这不是健康变化`
      : `no data from the device for ${span}: the watch may be off or not syncing; this is not a health change`;
  }
  if (code === "nights_missing" && d.nights !== undefined) {
    return zh ? `连续 ${d.nights} 晚夜间心率不足（白天有数据）；夜间检测暂停，直到夜间佩戴`
      : `too little overnight heart rate for ${d.nights} nights while the device sent data by day; the overnight check is paused until it is worn at night`;
  }
  if ((code === "combined_evidence" || code === "feature_change") && Array.isArray(d.signals) && d.signals.length) {
    const parts = d.signals.map((s) => signalText(s, zh));
    if (parts.some((p) => p === null)) return serviceText(fallback);
    if (zh) return (parts.length > 1 ? "多项指标同时变化：" : "明显变化：") + parts.join("；");
    return (parts.length > 1 ? "several changes together: " : "a clear change: ") + parts.join(", ");
  }
  return serviceText(fallback);
}
// ---- end of detection reasons ---------------------------------------------------------------------------
