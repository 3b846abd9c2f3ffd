"""Figures measured by the fault tests, written to ``test-artifacts/reliability.md`` at the end of the run.

Tests record what they tried and what they found (``REPORT.section(key).add(label, value)``); nothing in the
document is typed by hand except the section titles and the one-line description of each scenario. The layout is
fixed (sections in the order below, rows in the order the test adds them), so two runs differ only in the figures.

A test run never changes tracked files: the report goes under the ignored ``test-artifacts/``. To publish it,
run the fault tests with ``BEIDOU_WRITE_RELIABILITY_DOC=1``: then ``docs/reliability.md`` is written, but only when
every fault test was selected and passed, so ``docs/`` never claims "nothing lost" on the strength of a partial
or failed run.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
PARTIAL = ROOT / "test-artifacts" / "reliability.md"

# (key, title, what was done) — in the order they appear in the document.
SECTIONS: list[tuple[str, str, str]] = [
    ("api_sigkill", "The API process killed (SIGKILL) while hundreds of streams send",
     "Hundreds of WebSocket streams, one person each, send numbered frames of heart-rate readings and keep every "
     "frame until its ack arrives. The API process group is killed with SIGKILL mid-stream and started again on "
     "the same port; the phones reconnect and resend every unacknowledged frame."),
    ("worker_sigkill", "The detection worker killed mid-batch",
     "People with identical histories of several weeks (heart rate and steps, a fever-like rise in the last nights) "
     "are fed to a worker that is killed with SIGKILL several times while it scores them, then left to finish. A "
     "reference person with the same history is processed by a worker that is never interrupted."),
    ("sender_sigkill", "The notification sender killed mid-send",
     "Care agents reach out about many alerts at once; the FCM emulator holds the first sends (the client times "
     "out while the message may still go out). The worker, which runs the sender, is killed with SIGKILL while "
     "sends are in flight, more than once, and restarted."),
    ("db_outage", "PostgreSQL stopped for 30 s during ingest",
     "A private TimescaleDB cluster serves a dedicated API. WebSocket streams and HTTP posters send steadily; the "
     "cluster is stopped (`pg_ctl stop -m fast`) for 30 s and started again. The API is not restarted."),
    ("db_crash", "PostgreSQL crashed (immediate stop) during ingest",
     "As above, but the cluster is stopped with `pg_ctl stop -m immediate` (no shutdown checkpoint: crash "
     "recovery from the WAL on start) for a few seconds."),
    ("fcm_errors", "FCM answering errors and timeouts for a while",
     "Several device tokens are scripted in the FCM emulator to answer UNAVAILABLE (with Retry-After), INTERNAL, "
     "QUOTA_EXCEEDED (with Retry-After) or to time out, for a number of sends, then to succeed."),
    ("limits", "Limits",
     "Each limit is pushed past its edge against a running API; after each, `/healthz` must still answer 200."),
]


@dataclass
class Section:
    key: str
    rows: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, label: str, value: object) -> None:
        """One measured figure (replaces an earlier row of the same label, keeping its place)."""
        text = _fmt(value)
        for i, (existing, _) in enumerate(self.rows):
            if existing == label:
                self.rows[i] = (label, text)
                return
        self.rows.append((label, text))

    def note(self, text: str) -> None:
        self.notes.append(text)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))) or "none"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(_fmt(v) for v in (sorted(value) if isinstance(value, set) else value)) or "none"
    return str(value)


class Report:
    def __init__(self) -> None:
        self.sections: dict[str, Section] = {key: Section(key) for key, _, _ in SECTIONS}
        self.environment: dict[str, str] = {}
        self.selected: list[str] = []
        self.deselected: list[str] = []
        self.outcomes: dict[str, str] = {}
        self.seconds = 0.0  # spent in the fault tests (set-up, call and tear-down), whatever else the run held

    def section(self, key: str) -> Section:
        return self.sections[key]

    # --- bookkeeping by the conftest hooks ------------------------------------------------------------
    def outcome(self, nodeid: str, when: str, outcome: str, duration: float = 0.0) -> None:
        self.seconds += duration
        if outcome == "failed":
            self.outcomes[nodeid] = "failed"
        elif outcome == "skipped":
            self.outcomes[nodeid] = "skipped"
        elif when == "call" and self.outcomes.get(nodeid) != "failed":
            self.outcomes[nodeid] = "passed"

    @property
    def complete(self) -> bool:
        # Every fault test file must have run (running one file collects no others, so none is "deselected").
        files = {p.name for p in Path(__file__).parent.glob("test_*.py")}
        ran = {n.split("::")[0].rsplit("/", 1)[-1] for n in self.selected}
        return (bool(self.selected) and not self.deselected and files <= ran
                and all(self.outcomes.get(n) == "passed" for n in self.selected))

    def render(self) -> str:
        passed = sum(self.outcomes.get(n) == "passed" for n in self.selected)
        lines = [
            "# Reliability: faults, and nothing lost",
            "",
            "<!-- Generated by `BEIDOU_WRITE_RELIABILITY_DOC=1 pytest tests/faults` (tests/faults/report.py). "
            "Do not edit: run the fault suite. -->",
            "",
            f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by the fault tests "
            f"(`BEIDOU_WRITE_RELIABILITY_DOC=1 .venv/bin/python -m pytest tests/faults`): {passed} of {len(self.selected)} passed, "
            f"{self.seconds:.0f} s in all.",
            "",
            "| environment | |",
            "| --- | --- |",
            f"| machine | {platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()} |",
        ]
        lines += [f"| {k} | {v} |" for k, v in self.environment.items()]
        lines.append("")
        lines.append("Every figure below was measured by the run; \"lost\" and \"duplicates\" are counted in the "
                     "database after the fault, against what the clients sent and what was acknowledged to them.")
        for number, (key, title, what) in enumerate(SECTIONS, 1):
            section = self.sections[key]
            lines += ["", f"## {number}. {title}", "", what, ""]
            if not section.rows:
                lines.append("_Not measured in this run._")
                continue
            lines += ["| what | measured |", "| --- | --- |"]
            lines += [f"| {label} | {value} |" for label, value in section.rows]
            for text in section.notes:
                lines += ["", text]
        failed = [n for n in self.selected if self.outcomes.get(n) != "passed"]
        if failed or self.deselected:
            lines += ["", "## Not a full passing run", ""]
            lines += [f"* {n}: {self.outcomes.get(n, 'not run')}" for n in failed]
            lines += [f"* {n}: deselected" for n in self.deselected]
        return "\n".join(lines) + "\n"

    def write(self) -> Path | None:
        if not self.selected:
            return None
        publish = os.environ.get("BEIDOU_WRITE_RELIABILITY_DOC") == "1" and self.complete
        path = DOC if publish else PARTIAL
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render())
        return path


def _cpus() -> int:
    import os
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


REPORT = Report()
