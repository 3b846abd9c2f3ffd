"""The reference sync client: replays a folder of platform-shaped change batches against a running service.

Each ``*.json`` file of the folder, in name order, is one request as a phone app would send it after reading
its health store: a Health Connect ``getChanges`` page, a HealthKit anchored-query result, Huawei sample sets,
or a FHIR Observation / batch Bundle. The platform is told by the file's shape (or a ``platform`` key naming
it, which is removed before sending). Only the standard library is used, so the same code is a readable
example for app developers.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROUTES = {"health-connect": "/v1/sync/health-connect", "healthkit": "/v1/sync/healthkit",
          "huawei": "/v1/sync/huawei", "fhir-bundle": "/fhir/r4", "fhir-observation": "/fhir/r4/Observation"}


def platform_of(body: dict) -> str:
    """Which endpoint a batch belongs to, from its shape."""
    named = body.pop("platform", None)
    if named in ROUTES:
        return named
    if "changes" in body:
        return "health-connect"
    if "samples" in body or "deletedObjects" in body:
        return "healthkit"
    if "sampleSets" in body or "deletions" in body:
        return "huawei"
    if body.get("resourceType") == "Bundle":
        return "fhir-bundle"
    if body.get("resourceType") == "Observation":
        return "fhir-observation"
    raise ValueError("not a Health Connect, HealthKit, Huawei or FHIR batch")


@dataclass
class Replay:
    files: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def batches(folder: Path) -> Iterator[tuple[Path, str, bytes]]:
    for path in sorted(folder.glob("*.json")):
        body = json.loads(path.read_text())
        platform = platform_of(body)
        yield path, platform, json.dumps(body).encode()


def _count(platform: str, answer: dict) -> Counter:
    if platform == "fhir-bundle":
        return Counter(e["outcome"]["issue"][0]["details"]["text"] for e in answer.get("entry", []))
    if platform == "fhir-observation":
        return Counter([answer["issue"][0]["details"]["text"]])
    return Counter(r["status"] for r in answer.get("results", []))


def replay(folder: Path, *, url: str, token: str, progress: Callable[[str], None] = print,
           timeout_s: float = 60.0, retries: int = 5) -> Replay:
    """Send every batch in order; a 503 (or a lost connection) is retried after Retry-After, as an app should."""
    done = Replay()
    started = time.perf_counter()
    files = list(batches(folder))
    for number, (path, platform, body) in enumerate(files, 1):
        request = urllib.request.Request(url.rstrip("/") + ROUTES[platform], data=body, method="POST", headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        for attempt in range(retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as response:
                    answer = json.loads(response.read())
                counts = _count(platform, answer)
                done.statuses.update(counts)
                progress(f"[{number}/{len(files)}] {path.name} ({platform}): "
                         + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
                break
            except urllib.error.HTTPError as exc:
                text = exc.read().decode(errors="replace")[:300]
                if exc.code in (502, 503, 504) and attempt < retries:
                    time.sleep(float(exc.headers.get("Retry-After", "1")))
                    continue
                # 201/200/409/403/422 of a single FHIR Observation are answers, not failures
                if platform == "fhir-observation" and exc.code in (403, 409, 422):
                    try:
                        counts = _count(platform, json.loads(text))
                    except (ValueError, KeyError, IndexError):
                        counts = Counter(rejected=1)
                    done.statuses.update(counts)
                    progress(f"[{number}/{len(files)}] {path.name} ({platform}): "
                             + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
                    break
                done.failures.append(f"{path.name}: HTTP {exc.code} {text}")
                progress(f"[{number}/{len(files)}] {path.name} ({platform}): HTTP {exc.code} {text}")
                break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt < retries:
                    time.sleep(1.0)
                    continue
                done.failures.append(f"{path.name}: {exc}")
                progress(f"[{number}/{len(files)}] {path.name}: {exc}")
        done.files += 1
    done.seconds = time.perf_counter() - started
    return done
