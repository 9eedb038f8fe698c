"""Runs the suite's sections one after another, each in its own time box, under one deadline.

A GPU lease can end at any moment, so the report is written to disk after every section:
whatever finished is kept even if the process is killed. A section that raises, overruns its
box or has no time left is recorded as such and the next one runs; a section whose inputs
failed is skipped.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class SectionTimeout(Exception):
    """A section ran past its time box."""


class SectionSkipped(Exception):
    """A section cannot measure anything here (no GPU, no photos, ...); the message says why."""


@dataclass(frozen=True)
class Section:
    """One measured area. `run(state)` returns its JSON-able result; `min_s` is the time it
    needs to be worth starting; `needs` names sections that must have succeeded first."""

    name: str
    run: Callable[[dict], dict]
    rows: Callable[[dict], list[tuple[str, str]]]
    min_s: float = 5.0
    needs: tuple[str, ...] = ()


class Report:
    """The suite's JSON report, saved atomically (a temporary file renamed over the target)."""

    def __init__(self, path: Path, header: dict) -> None:
        self.path = path
        self.data = {**header, "complete": False, "sections": {}}

    def record(self, name: str, result: dict) -> None:
        self.data["sections"][name] = result
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".gpu-suite-")
        with os.fdopen(handle, "w") as file:
            json.dump(self.data, file, indent=2)
            file.write("\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, self.path)


@contextmanager
def time_box(seconds: float):
    """Raise `SectionTimeout` in the main thread once `seconds` have passed."""

    def expire(signum, frame):
        raise SectionTimeout(f"ran past its {seconds:.0f} s time box")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_sections(
    sections: list[Section], report: Report, boxes: dict, deadline: float, state: dict
) -> None:
    """Run each section in order inside min(its box, time left); record and save each result."""
    done: set[str] = set()
    for section in sections:
        left = deadline - time.monotonic()
        missing = [name for name in section.needs if name not in done]
        if missing:
            report.record(section.name, skipped(f"needs {', '.join(missing)}, which did not run"))
            continue
        if left < section.min_s:
            report.record(
                section.name,
                skipped(
                    f"budget: {left:.0f} s left, the section needs about {section.min_s:.0f} s"
                ),
            )
            continue
        box = min(boxes.get(section.name, left), left)
        print(f"[gpu-suite] {section.name} (box {box:.0f} s)", file=sys.stderr, flush=True)
        start = time.monotonic()
        state["box_end"] = start + box
        try:
            with time_box(box):
                result = {"status": "ok", **section.run(state)}
            done.add(section.name)
        except SectionSkipped as exc:
            result = skipped(str(exc))
        except SectionTimeout as exc:
            result = {"status": "timed out", "reason": str(exc)}
        except Exception as exc:  # a failing section must not lose the others' results
            traceback.print_exc()
            result = {"status": "failed", "reason": one_line(exc)}
        result["seconds"] = round(time.monotonic() - start, 2)
        report.record(section.name, result)


def rounds(state: dict, count: int, margin_s: float = 1.0):
    """Yield up to `count` round numbers, stopping early (after at least one) when the next
    round would likely end past the section's time box: partial rounds beat a timeout."""
    last = 0.0
    for number in range(count):
        started = time.monotonic()
        if number and started + last + margin_s > state["box_end"]:
            return
        yield number
        last = time.monotonic() - started


def skipped(reason: str) -> dict:
    return {"status": "skipped", "reason": reason}


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def table(sections: list[Section], report: dict) -> str:
    """The printed summary: each section's status and its headline numbers."""
    lines = [f"{'section / metric':46} {'value':>24}", "-" * 71]
    for section in sections:
        result = report["sections"].get(section.name, {"status": "not reached"})
        status = result["status"]
        seconds = f" ({result['seconds']:.0f} s)" if "seconds" in result else ""
        lines.append(f"{section.name:46} {status + seconds:>24}")
        if status == "ok":
            lines += [f"  {label:44} {value:>24}" for label, value in section.rows(result)]
        elif "reason" in result:
            lines.append(f"  {result['reason'][:68]}")
    for check in report.get("checks", []):
        verdict = {True: "met", False: "MISSED", None: "n/a"}[check["met"]]
        value = "—" if check["value"] is None else f"{check['value']:.3f}"
        lines.append(f"target {check['metric']:39} {value} ≤ {check['target']} {verdict:>6}")
    return "\n".join(lines)
