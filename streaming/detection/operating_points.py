"""The operating points an insurer chooses from, as measured by ``beidou evaluate``.

``operating_points.json`` (next to this module) is written by ``beidou evaluate --write-operating-points``:
for each choice the fusion threshold and, from the injected-illness curve, the expected sensitivity
(share of injected illnesses alerted within 3 days) and alert burden (alert episodes per 30 healthy days),
with the fusion parameters they were measured with. Nothing here is tuned by hand.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

PATH = Path(__file__).with_name("operating_points.json")
CHOICES = ("low", "standard", "high")
DEFAULT_CHOICE = "standard"


@lru_cache(maxsize=1)
def table() -> dict:
    """The committed table: ``{"choices": {name: {...}}, "params": {...}, "command": ...}``."""
    return json.loads(PATH.read_text())


def threshold_for(choice: str) -> float:
    """The fusion threshold of ``choice`` (``low``, ``standard`` or ``high`` sensitivity)."""
    return float(table()["choices"][choice]["threshold"])
