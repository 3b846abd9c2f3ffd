"""Replay exported heart-rate and steps files through a :class:`PersonDetector` and print its episodes.

    python -m streaming.replay HR.csv[.gz] STEPS.csv[.gz] --person ID [--tz Europe/Berlin]

The files have a header and two columns, ``time,bpm`` and ``time,steps``, with local times without an
offset (``2020-03-10 00:00:06``) in the zone given by ``--tz``. One JSON object per episode is printed:
``{"person", "kind", "start", "end", "tier", "feature", "reason"}``.

Parsing is done in bulk with numpy and the two streams are merged by one sort, so the per-reading cost is
the detector's own: a million readings take seconds, not minutes.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import numpy as np

from streaming.detection import DetectorConfig, PersonDetector
from streaming.events import AnomalyEvent

_STEPS, _HEART_RATE = 0, 1  # steps sort first at equal times: a step in that second means not at rest
_METRICS = ("steps", "heart_rate")


def read_series(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(local_times, values)`` of a two-column CSV or CSV.gz; times as naive ``datetime64[s]``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or len(header) < 2:
            raise ValueError(f"{path}: expected a header like time,value")
        times, values = [], []
        for row in reader:
            if len(row) >= 2 and row[1]:
                times.append(row[0])
                values.append(row[1])
    return np.array(times, dtype="datetime64[s]"), np.array(values, dtype=np.float64)


def to_epoch(local: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """Epoch seconds of naive local times in ``tz``; UTC offsets are looked up once per distinct hour."""
    seconds = local.astype("datetime64[s]").astype(np.int64)
    if len(seconds) == 0:
        return seconds.astype(np.float64)
    hours, inverse = np.unique(seconds // 3600, return_inverse=True)
    offsets = np.array([
        datetime.fromtimestamp(int(h) * 3600, ZoneInfo("UTC")).replace(tzinfo=tz).utcoffset().total_seconds()
        for h in hours
    ])
    return seconds.astype(np.float64) - offsets[inverse]


def merged_stream(hr: tuple[np.ndarray, np.ndarray], steps: tuple[np.ndarray, np.ndarray],
                  tz: ZoneInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(epoch_seconds, metric_codes, values)`` of both series (as from :func:`read_series`) in time order."""
    (hr_t, hr_v), (st_t, st_v) = hr, steps
    ts = np.concatenate([to_epoch(hr_t, tz), to_epoch(st_t, tz)])
    codes = np.concatenate([np.full(len(hr_t), _HEART_RATE, np.int8), np.full(len(st_t), _STEPS, np.int8)])
    values = np.concatenate([hr_v, st_v])
    order = np.lexsort((codes, ts))
    return ts[order], codes[order], values[order]


def run_series(hr: tuple[np.ndarray, np.ndarray], steps: tuple[np.ndarray, np.ndarray], person: str,
               tz: str | ZoneInfo = "UTC", config: DetectorConfig | None = None) -> list[AnomalyEvent]:
    """Every episode the detector finds in the two series, in start order (open ones included)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    ts, codes, values = merged_stream(hr, steps, zone)
    detector = PersonDetector(person, zone, config)
    process = detector.process_epoch
    metrics = _METRICS
    # tolist() turns numpy scalars into Python numbers once, instead of per call.
    for t, code, value in zip(ts.tolist(), codes.tolist(), values.tolist()):
        process(metrics[code], t, value)
    episodes = detector.pop_finished() + detector.open_episodes()
    return sorted(episodes, key=lambda e: (e.start, e.feature))


def run_person(heart_rate_path, steps_path, person: str, tz: str | ZoneInfo = "UTC",
               config: DetectorConfig | None = None) -> list[AnomalyEvent]:
    """:func:`run_series` on two files."""
    return run_series(read_series(heart_rate_path), read_series(steps_path), person, tz, config)


def replay(heart_rate_path, steps_path, person: str, tz: str = "UTC", out: TextIO = sys.stdout) -> int:
    """Print one JSON line per episode to ``out``; returns how many were printed."""
    episodes = run_person(heart_rate_path, steps_path, person, tz)
    for episode in episodes:
        out.write(json.dumps(episode.to_json(), ensure_ascii=False) + "\n")
    return len(episodes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streaming.replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("heart_rate", help="CSV or CSV.gz with columns time,bpm")
    parser.add_argument("steps", help="CSV or CSV.gz with columns time,steps")
    parser.add_argument("--person", default="person", help="id carried into the output")
    parser.add_argument("--tz", default="UTC", help="time zone of the files' local times (default UTC)")
    args = parser.parse_args(argv)
    replay(args.heart_rate, args.steps, args.person, args.tz, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
