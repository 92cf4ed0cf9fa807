"""Every tool answers ``--help`` with its usage: the parser must build without data, weights or a GPU.

Not timed here (a shared machine makes timings flaky): benchmarks/bench_cli_help.py measures them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOOLS_DIR = Path(__file__).resolve().parents[2] / "tools"
TOOLS = sorted(p.name for p in TOOLS_DIR.glob("*.py") if not p.name.startswith("_"))


def test_tools_are_found():
    assert "train.py" in TOOLS and "convert_nuscenes.py" in TOOLS


@pytest.mark.parametrize("tool", TOOLS)
def test_help_prints_usage_and_exits_0(tool, run_tool):
    proc = run_tool(tool, "--help", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(f"usage: {tool}"), proc.stdout[:500]
    assert "--help" in proc.stdout


#: packages that cost seconds to import; building a parser must need none of them.
HEAVY = ("torch", "yolox", "nuscenes", "matplotlib", "pandas", "motmetrics", "sklearn")


@pytest.mark.parametrize("tool", TOOLS)
def test_help_imports_no_heavy_package(tool):
    """The guard that keeps --help fast without timing it: the parser is built from light modules only."""
    code = ("import runpy, sys\n"
            f"sys.argv = [{str(TOOLS_DIR / tool)!r}, '--help']\n"
            "try:\n"
            f"    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=TOOLS_DIR.parent, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY:", proc.stdout.strip().splitlines()[-1]
