"""A large outcomes file loads in bounded memory: five times the rows, about the same peak
(measured as VmHWM in a fresh interpreter, tests/unit/monitoring/memory_child.py)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def peak(rows: int, chunk_rows: int, work: Path) -> dict:
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "tests.unit.monitoring.memory_child",
                           str(rows), str(chunk_rows), str(work)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["stored"] == rows and out["rejected"] == 0
    return out


def test_five_times_the_outcomes_load_within_about_the_same_memory(tmp_path):
    small = peak(20_000, 20_000, tmp_path / "small")  # one chunk
    large = peak(100_000, 20_000, tmp_path / "large")  # five
    grew = (large["peak_mb"] - large["floor_mb"]) - (small["peak_mb"] - small["floor_mb"])
    assert grew < 50, (small, large)  # measured: ~+25 MB (allocator), vs ~+100 MB a chunk
