"""The benchmark suite runs end to end on a tiny farm and reports numbers (never timing bounds:
the numbers themselves belong in bench/RESULTS.md, not in assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_quick_cold_and_warm_polls_report_numbers(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--no-peers", "--feeds", "20",
         "--runs", "1", "--scenarios", "cold,warm", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    cold, warm = results["cold"]["vedette"], results["warm"]["vedette"]
    for scenario in (cold, warm):
        assert scenario["ok_runs"] == 1
        assert scenario["wall_s"]["median"] > 0
        assert scenario["cpu_s"]["median"] > 0
        assert scenario["peak_rss_mb"]["median"] > 0
    assert cold["vedette"]["new"] > 0
    assert cold["wire"]["ok_200"] > 0
    assert warm["wire"]["not_modified_304"] > 0
    assert warm["vedette"]["new"] == 0
    assert "cold" in completed.stdout
