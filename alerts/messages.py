"""What a push says, per purpose and language. No health data: the app fetches details when opened."""
from __future__ import annotations

TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "check_in": {
        "en": ("Checking in", "Your insurer's care team would like to check in with you. Tap to answer."),
        "zh-CN": ("关怀问候", "您的保险公司关怀团队想了解您的近况，点击即可回复。"),
    },
    "reconnect": {
        "en": ("Your device has not synced lately",
               "Open the app to reconnect it, so your care team can keep looking out for you."),
        "zh-CN": ("您的设备近期未同步", "请打开应用重新连接设备，以便关怀团队继续守护您的健康。"),
    },
    "escalation": {
        "en": ("An alert needs attention", "An alert in your care queue is waiting to be picked up."),
        "zh-CN": ("有提醒待处理", "关怀队列中有一条提醒等待处理。"),
    },
    "break_glass_digest": {
        "en": ("Break-the-glass looks yesterday", "Staff looked at people's data without an alert. Open the audit "
                                                  "view to review them."),
        "zh-CN": ("昨日有紧急调阅", "有工作人员在没有提醒的情况下查看了会员数据，请打开审计视图核查。"),
    },
    "person_replied": {
        "en": ("A member asked for help", "Open the care queue: a member answered your check-in."),
        "zh-CN": ("会员请求帮助", "请打开关怀队列：一位会员回复了您的问候。"),
    },
}
LANGUAGES = ("en", "zh-CN")


def text_for(purpose: str, language: str | None) -> tuple[str, str]:
    """Title and body in the recipient's language (English when we do not speak theirs)."""
    texts = TEXTS.get(purpose, TEXTS["check_in"])
    lang = language if language in texts else ("zh-CN" if (language or "").lower().startswith("zh") else "en")
    return texts[lang]


# -- detection reasons in the reader's language -------------------------------------------------------------
# The detector sends a reason as data (reason_code + details, see streaming.events); these render it. The
# English sentence the detector wrote stays the fallback for any code or signal not known here.
SIGNAL_NAMES = {
    "overnight_rhr": {"en": "overnight resting HR", "zh-CN": "夜间静息心率"},
    "day_rhr": {"en": "daytime resting HR", "zh-CN": "日间静息心率"},
    "device_rhr": {"en": "device resting HR", "zh-CN": "设备静息心率"},
    "daily_steps": {"en": "steps", "zh-CN": "步数"},
    "sleep_duration": {"en": "sleep", "zh-CN": "睡眠"},
    "hrv": {"en": "HRV", "zh-CN": "心率变异性"},
    "spo2": {"en": "SpO2", "zh-CN": "血氧"},
    "body_temperature": {"en": "temperature", "zh-CN": "体温"},
    "respiratory_rate": {"en": "respiratory rate", "zh-CN": "呼吸频率"},
    "blood_pressure": {"en": "systolic blood pressure", "zh-CN": "收缩压"},
    "glucose": {"en": "glucose", "zh-CN": "血糖"},
}
_RATIO_SIGNALS = ("daily_steps", "hrv")


def _language(language: str | None) -> str:
    return "zh-CN" if (language or "").lower().startswith("zh") else "en"


def _signal_text(s: dict, lang: str) -> str | None:
    names = SIGNAL_NAMES.get(s.get("signal"))
    if names is None:
        return None
    name, days, change = names[lang], int(s.get("days") or 1), float(s.get("change") or 0.0)
    night = s["signal"] == "overnight_rhr"
    if s["signal"] in _RATIO_SIGNALS and s.get("baseline"):
        pct = 100 * (float(s["value"]) / float(s["baseline"]) - 1)
        amount = f"{pct:+.0f}%"
    elif s["signal"] == "sleep_duration":
        amount = f"{change / 60:+.1f} h" if lang == "en" else f"{change / 60:+.1f} 小时"
    else:
        amount = f"{change:+.1f} {s.get('unit', '')}".rstrip() if abs(change) < 10 else f"{change:+.0f} {s.get('unit', '')}"
    if lang == "zh-CN":
        span = f"{days} 晚" if night else f"{days} 天"
        usual = f"（{s['value']:g}，平时 {s['baseline']:g}）" if night else ""
        return f"{name} {amount}，持续 {span}{usual}"
    span = f"{days} night{'s' if days != 1 else ''}" if night else f"{days} day{'s' if days != 1 else ''}"
    usual = f" ({s['value']:g} vs usual {s['baseline']:g})" if night else ""
    return f"{name} {amount} for {span}{usual}"


def reason_text(reason_code: str | None, details: dict | None, language: str | None, fallback: str) -> str:
    """A detection reason in ``language`` (en or zh-CN); ``fallback`` (the English sentence) when unknown."""
    lang = _language(language)
    details = details or {}
    if reason_code == "no_data" and "hours" in details:
        hours = float(details["hours"])
        span = (f"{hours:.0f} 小时" if hours < 48 else f"{hours / 24:.0f} 天") if lang == "zh-CN" else (
            f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days")
        return (f"设备已 {span} 没有数据：手表可能未佩戴或未同步；这不是健康变化" if lang == "zh-CN" else
                f"no data from the device for {span}: the watch may be off or not syncing; this is not a health change")
    if reason_code == "nights_missing" and "nights" in details:
        n = int(details["nights"])
        return (f"连续 {n} 晚夜间心率不足（白天有数据）；夜间检测暂停，直到夜间佩戴" if lang == "zh-CN" else
                f"too little overnight heart rate for {n} nights while the device sent data by day; the overnight "
                f"check is paused until it is worn at night")
    if reason_code in ("combined_evidence", "feature_change") and details.get("signals"):
        parts = [_signal_text(s, lang) for s in details["signals"]]
        if any(p is None for p in parts):
            return fallback
        if lang == "zh-CN":
            head = "多项指标同时变化：" if len(parts) > 1 else "明显变化："
            return head + "；".join(parts)
        head = "several changes together: " if len(parts) > 1 else "a clear change: "
        return head + ", ".join(parts)
    return fallback
