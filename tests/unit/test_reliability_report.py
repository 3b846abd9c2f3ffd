"""A test run never rewrites the tracked docs/reliability.md unless asked to."""
from __future__ import annotations

from pathlib import Path

from tests.faults import report


def _complete_run() -> report.Report:
    run = report.Report()
    for path in sorted(Path(report.__file__).parent.glob("test_*.py")):
        nodeid = f"tests/faults/{path.name}::test_x"
        run.selected.append(nodeid)
        run.outcome(nodeid, "call", "passed")
    assert run.complete
    return run


def test_a_full_passing_run_writes_the_artifact_not_the_tracked_document(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "DOC", tmp_path / "docs" / "reliability.md")
    monkeypatch.setattr(report, "PARTIAL", tmp_path / "test-artifacts" / "reliability.md")
    monkeypatch.delenv("BEIDOU_WRITE_RELIABILITY_DOC", raising=False)
    assert _complete_run().write() == report.PARTIAL and not report.DOC.exists()


def test_asked_for_a_full_passing_run_publishes_the_document(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "DOC", tmp_path / "docs" / "reliability.md")
    monkeypatch.setattr(report, "PARTIAL", tmp_path / "test-artifacts" / "reliability.md")
    monkeypatch.setenv("BEIDOU_WRITE_RELIABILITY_DOC", "1")
    assert _complete_run().write() == report.DOC


def test_asked_for_a_partial_run_still_writes_only_the_artifact(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "DOC", tmp_path / "docs" / "reliability.md")
    monkeypatch.setattr(report, "PARTIAL", tmp_path / "test-artifacts" / "reliability.md")
    monkeypatch.setenv("BEIDOU_WRITE_RELIABILITY_DOC", "1")
    run = _complete_run()
    run.outcome(run.selected[0], "call", "failed")
    assert run.write() == report.PARTIAL
