"""What a person can consent to: data types (the ingest metrics) × purposes, described in plain words."""
from __future__ import annotations

from app.core import datatypes

# The data types are declared in app.core.datatypes; these are views of it under the names consent code uses.
DATA_TYPES: tuple[str, ...] = datatypes.NAMES

PURPOSES: tuple[str, ...] = ("monitoring", "outreach", "research")

MONITORING = "monitoring"
OUTREACH = "outreach"
RESEARCH = "research"

# Outreach and research work on what monitoring stored: without monitoring they have nothing to act on,
# but withdrawing either of them never touches monitoring.
NEEDS: dict[str, tuple[str, ...]] = {MONITORING: (), OUTREACH: (MONITORING,), RESEARCH: (MONITORING,)}

LANGUAGES: tuple[str, ...] = ("en", "zh-CN")
DEFAULT_LANGUAGE = "en"

# Below this age a person's consent must come from a guardian; a guardian must be at least GUARDIAN_MIN_AGE
# (when their birth date is known).
AGE_OF_CONSENT = 14
GUARDIAN_MIN_AGE = 18

DATA_TYPE_NAMES: dict[str, dict[str, str]] = {t.name: dict(t.names) for t in datatypes.DATA_TYPES.values()}

PURPOSE_NAMES: dict[str, dict[str, str]] = {
    MONITORING: {"en": "Monitoring", "zh-CN": "健康监测"},
    OUTREACH: {"en": "Outreach", "zh-CN": "主动联系"},
    RESEARCH: {"en": "Research", "zh-CN": "研究"},
}

_PURPOSE_TEXT: dict[str, dict[str, str]] = {
    MONITORING: {
        "en": "Store your {name} readings and analyse them to look after your own health.",
        "zh-CN": "保存您的{name}数据，并分析这些数据以照护您本人的健康。",
    },
    OUTREACH: {
        "en": "Your insurer's care team may contact you about what it sees in your {name} readings.",
        "zh-CN": "保险公司的健康关怀团队可以就您的{name}数据中发现的情况与您联系。",
    },
    RESEARCH: {
        "en": "Your {name} readings may be used for research, with everything that identifies you removed.",
        "zh-CN": "您的{name}数据在去除一切可识别您身份的信息后，可用于研究。",
    },
}


def language_or_default(language: str | None) -> str:
    """The language to describe things in: the person's own if we have texts for it, else English."""
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def describe(data_type: str, purpose: str, language: str | None) -> str:
    """What granting ``purpose`` for ``data_type`` means, in plain words in ``language``."""
    lang = language_or_default(language)
    return _PURPOSE_TEXT[purpose][lang].format(name=DATA_TYPE_NAMES[data_type][lang])
