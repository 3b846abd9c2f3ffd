"""Prometheus metrics and logging set-up shared by every process."""
from __future__ import annotations

import logging
import sys

from prometheus_client import Counter, Gauge, Histogram

READINGS = Counter("beidou_readings_total", "Readings received, by outcome and reason", ["status", "reason"])
INGEST_COMMIT_SECONDS = Histogram(
    "beidou_ingest_commit_seconds", "Time from a batch entering the writer queue to its commit",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INGEST_GROUP_ROWS = Histogram(
    "beidou_ingest_group_rows", "Readings per group commit", buckets=(1, 10, 100, 500, 1000, 5000, 20000),
)
DETECTION_LATE_READINGS = Counter(
    "beidou_detection_late_readings_total",
    "Readings stored but never scored: older than the allowed lateness behind the person's detector position",
)
DETECTION_RESCORES = Counter(
    "beidou_detection_rescores_total", "Passes that restored a checkpoint and scored windows again for late data",
)
WS_CONNECTIONS = Gauge("beidou_ws_connections", "Open WebSocket streams")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Per-run chatter of these libraries is noise at INFO; their warnings still show.
    for name in ("apscheduler", "httpx"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
