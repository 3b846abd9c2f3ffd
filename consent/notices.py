"""The notice a person reads before deciding, and its version.

The version is derived from the notice's own words (every language it is shown in), so it changes exactly
when the text does and a grant's recorded ``notice_version`` always names the words the person was shown.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from consent.catalog import (DATA_TYPE_NAMES, DATA_TYPES, LANGUAGES, PURPOSE_NAMES, PURPOSES, describe,
                             language_or_default)


@dataclass(frozen=True, slots=True)
class Notice:
    data_type: str
    purpose: str
    version: str
    title: str
    text: str


def version(data_type: str, purpose: str) -> str:
    """``n1-`` and 12 hex digits of the SHA-256 of the notice in every language we show it in."""
    words = "\n".join(f"{lang}\t{describe(data_type, purpose, lang)}" for lang in LANGUAGES)
    return "n1-" + hashlib.sha256(words.encode()).hexdigest()[:12]


def notices(language: str | None) -> list[Notice]:
    """Every data type × purpose, in catalogue order, in ``language`` (English if we do not speak it)."""
    lang = language_or_default(language)
    return [Notice(data_type=d, purpose=p, version=version(d, p),
                   title=f"{PURPOSE_NAMES[p][lang]} · {DATA_TYPE_NAMES[d][lang]}", text=describe(d, p, lang))
            for d in DATA_TYPES for p in PURPOSES]
