"""Small readers shared by the platform modules: zone offsets, measures with unit keys, item decoding."""
from __future__ import annotations

import re
from typing import Any

import msgspec

from streaming.validation import Rejected

_OFFSET = re.compile(r"^(Z|[+-]\d{2}(:?\d{2})?)$")


def offset_minutes(value: Any, what: str) -> int | None:
    """A zone offset as the platforms write it: ``"+08:00"``, ``"+0800"``, ``"Z"``, seconds as a number, or
    ``{"totalSeconds": 28800}`` (java.time.ZoneOffset). ``None`` stays ``None`` (to be inferred)."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("totalSeconds", value.get("id"))
    if isinstance(value, bool):
        raise Rejected("invalid", f"`{what}` is not a zone offset")
    if isinstance(value, int | float):
        minutes = int(value) // 60
    elif isinstance(value, str) and _OFFSET.match(value.strip()):
        text = value.strip()
        if text == "Z":
            return 0
        sign = -1 if text[0] == "-" else 1
        digits = text[1:].replace(":", "")
        minutes = sign * (int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0))
    else:
        raise Rejected("invalid", f"`{what}` {value!r} is not a zone offset like +08:00")
    if not -18 * 60 <= minutes <= 18 * 60:
        raise Rejected("invalid", f"`{what}` is outside ±18 hours")
    return minutes


def measure(value: Any, what: str, units: dict[str, str], default_unit: str) -> tuple[float, str]:
    """A number, or an object naming its unit (``{"inMillimetersOfMercury": 120}``, ``{"value": 97}``)."""
    if isinstance(value, bool) or value is None:
        raise Rejected("invalid", f"`{what}` is required")
    if isinstance(value, int | float):
        return float(value), default_unit
    if isinstance(value, dict):
        for key, unit in units.items():
            number = value.get(key)
            if isinstance(number, int | float) and not isinstance(number, bool):
                return float(number), unit
        raise Rejected("invalid", f"`{what}` needs one of: {', '.join(units)}")
    raise Rejected("invalid", f"`{what}` must be a number or an object with its unit")


def convert(item: Any, struct: type, what: str):
    """One item into its typed shape; unknown fields are ignored (platforms add fields)."""
    try:
        return msgspec.convert(item, struct, strict=False)
    except msgspec.ValidationError as exc:
        raise Rejected("invalid", f"{what}: {exc}") from None
