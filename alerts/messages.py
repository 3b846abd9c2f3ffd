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
