"""Evaluate the detector against NightSignal on a labelled folder.

    python bench/evaluate.py /work/shared/data/wearables-covid-dev [--tz UTC]

See ``streaming.evaluate`` for the folder layout and how the figures are counted.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streaming.evaluate import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
