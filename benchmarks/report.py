"""Writing a benchmark's JSON report (shared by the scripts in this folder)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def write_report(report: dict, out: str | Path) -> None:
    """Write `report` as indented JSON to `out` (folders made as needed) and say where."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
