"""What the detector costs: µs per reading, bytes of state per person x feature, a 1,000,000-reading replay.

    python bench/detector_cost.py [--readings 1000000]

Targets: < 5 µs per reading, < 4 KiB per person x feature, a million-reading replay in < 60 s on one core.
Prints figures; it is not a test.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import pickle
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streaming.detection import PersonDetector, Reading  # noqa: E402
from streaming.replay import replay  # noqa: E402

START = datetime(2026, 1, 5, tzinfo=timezone.utc)


def synthetic_stream(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """About ``n`` readings: heart rate every 5 s and steps every minute, a plausible day shape."""
    rng = np.random.default_rng(seed)
    per_day = 17280 + 1440
    days = max(1, n // per_day + 1)
    hr_t = np.arange(0, days * 86400, 5, dtype=np.float64)
    st_t = np.arange(0, days * 86400, 60, dtype=np.float64)
    hour_hr = (hr_t % 86400) // 3600
    hour_st = (st_t % 86400) // 3600
    awake_hr = (hour_hr >= 7) & (hour_hr < 23)
    night_shift = np.repeat(rng.normal(0, 2, days), 17280)[: len(hr_t)]
    hr_v = np.round(58 + night_shift + 14 * awake_hr + rng.normal(0, 3, len(hr_t)))
    walking = ((hour_st >= 7) & (hour_st < 9)) | ((hour_st >= 17) & (hour_st < 19))
    st_v = np.where(walking, rng.poisson(50, len(st_t)), 0).astype(np.float64)
    ts = np.concatenate([hr_t, st_t]) + START.timestamp()
    codes = np.concatenate([np.ones(len(hr_t), np.int8), np.zeros(len(st_t), np.int8)])
    values = np.concatenate([hr_v, st_v])
    order = np.lexsort((codes, ts))[:n]
    return ts[order], codes[order], values[order]


def per_reading_cost(ts, codes, values) -> tuple[float, float]:
    """µs per reading through ``process_epoch`` (the worker's path) and through ``process(Reading)``."""
    metrics = ("steps", "heart_rate")
    detector = PersonDetector("bench", "Europe/Berlin")
    items = list(zip(ts.tolist(), [metrics[c] for c in codes.tolist()], values.tolist()))
    began = time.perf_counter()
    for t, metric, value in items:
        detector.process_epoch(metric, t, value)
    epoch_us = (time.perf_counter() - began) / len(items) * 1e6
    subset = items[: min(len(items), 200_000)]
    readings = [Reading(datetime.fromtimestamp(t, timezone.utc), m, v) for t, m, v in subset]
    detector = PersonDetector("bench", "Europe/Berlin")
    began = time.perf_counter()
    for reading in readings:
        detector.process(reading)
    reading_us = (time.perf_counter() - began) / len(readings) * 1e6
    return epoch_us, reading_us


def state_sizes() -> tuple[dict[str, int], int, float, float, int]:
    """Per-feature and whole state bytes of a person sending every metric for 60 days (baselines full)."""
    rng = np.random.default_rng(2)
    detector = PersonDetector("bench", "Europe/Berlin")
    ts, codes, values = synthetic_stream(60 * 18720)
    metrics = ("steps", "heart_rate")
    spot = {"spo2": (97, 0.5), "resting_heart_rate": (58, 1.5), "hrv_rmssd": (45, 5), "glucose": (95, 8),
            "body_temperature": (36.6, 0.15), "respiratory_rate": (14, 0.6), "blood_pressure": (120, 5)}
    day = 0
    for t, code, value in zip(ts.tolist(), codes.tolist(), values.tolist()):
        detector.process_epoch(metrics[code], t, value)
        if t >= START.timestamp() + day * 86400 + 8 * 3600:
            for metric, (mu, sd) in spot.items():
                detector.process_epoch(metric, t, float(rng.normal(mu, sd)), 80.0)
            detector.process_epoch("sleep", t, float(rng.normal(440, 30)))
            day += 1
    data = detector.to_bytes()
    began = time.perf_counter()
    for _ in range(200):
        restored = PersonDetector.from_bytes(data)
    load_us = (time.perf_counter() - began) / 200 * 1e6
    began = time.perf_counter()
    for _ in range(200):
        restored.to_bytes()
    save_us = (time.perf_counter() - began) / 200 * 1e6
    river_pickle = len(pickle.dumps(detector._hr.night_base._median)) + len(pickle.dumps(detector._hr.night_base._iqr))
    return detector.feature_state_sizes(), len(data), load_us, save_us, river_pickle


def replay_time(ts, codes, values) -> tuple[float, int]:
    """Seconds for ``replay`` of the readings written as two CSV.gz exports (parsing included)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {1: Path(tmp) / "hr.csv.gz", 0: Path(tmp) / "steps.csv.gz"}
        local = [datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") for t in ts.tolist()]
        for code, header in ((1, ("time", "bpm")), (0, ("time", "steps"))):
            mask = (codes == code).tolist()
            with gzip.open(paths[code], "wt", newline="", compresslevel=1) as f:
                writer = csv.writer(f)
                writer.writerow(header)
                writer.writerows((s, f"{v:g}") for s, v, m in zip(local, values.tolist(), mask) if m)
        began = time.perf_counter()
        episodes = replay(paths[1], paths[0], "bench", "UTC", io.StringIO())
        return time.perf_counter() - began, episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=int, default=1_000_000)
    args = parser.parse_args()
    ts, codes, values = synthetic_stream(args.readings)
    days = (ts[-1] - ts[0]) / 86400
    print(f"stream: {len(ts):,} readings over {days:.0f} days (heart rate every 5 s, steps every minute)")

    epoch_us, reading_us = per_reading_cost(ts, codes, values)
    print(f"per reading, process_epoch:            {epoch_us:6.2f} µs   (target < 5)")
    print(f"per reading, process(Reading):          {reading_us:6.2f} µs")

    sizes, total, load_us, save_us, river_pickle = state_sizes()
    print(f"state per person x feature (bytes):     max {max(sizes.values())}   (target < 4096)")
    for name, size in sizes.items():
        print(f"    {name:20} {size:5}")
    print(f"whole person, {len(sizes)} features:          {total} bytes; from_bytes {load_us:.0f} µs, "
          f"to_bytes {save_us:.0f} µs")
    print(f"  (pickling the two river statistics of one baseline alone: {river_pickle} bytes)")

    seconds, episodes = replay_time(ts, codes, values)
    print(f"replay of {len(ts):,} readings from CSV.gz: {seconds:6.1f} s   (target < 60); {episodes} episodes")


if __name__ == "__main__":
    main()
