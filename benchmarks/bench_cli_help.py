"""``python tools/<tool> --help`` wall time for every tool, in fresh interpreters. Target: well under 1000 ms.

A user's first contact with a tool is ``--help``: it must not wait for torch, the nuScenes devkit or matplotlib.
Each command runs ``--repeat`` times (round robin over the tools, so a load spike on the shared machine hits all
of them alike) after one untimed warm-up run; ``python -c pass`` is timed the same way as the floor no tool can beat.

    python benchmarks/bench_cli_help.py [--repeat 5] [--tools train.py demo.py] [--max-ms [1000]]

``--max-ms`` (alone: the 1000 ms target) exits 1 when a tool's median is over it, for scripted runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

REPO = Path(__file__).resolve().parents[1]
TOOLS_DIR = REPO / "tools"
TARGET_MS = 1000.0
REFERENCE = "python -c pass"


def tool_names() -> list[str]:
    """Every runnable tool: ``tools/*.py`` without private helpers."""
    return sorted(p.name for p in TOOLS_DIR.glob("*.py") if not p.name.startswith("_"))


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall milliseconds and exit status of one fresh interpreter."""
    start = time.perf_counter()
    code = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return (time.perf_counter() - start) * 1e3, code


def measure(commands: dict[str, list[str]], repeat: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Timings per label (``repeat`` each, round robin after one warm-up) and the worst exit status per label."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    times: dict[str, list[float]] = {label: [] for label in commands}
    codes: dict[str, int] = dict.fromkeys(commands, 0)
    for label, cmd in commands.items():  # warm-up: byte-code compilation and a cold disk cache are not startup
        codes[label] = run_once(cmd, env)[1]
    for _ in range(repeat):
        for label, cmd in commands.items():
            elapsed, code = run_once(cmd, env)
            times[label].append(elapsed)
            codes[label] = codes[label] or code
    return times, codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--repeat", type=int, default=5, help="timed runs per command (default %(default)s)")
    parser.add_argument("--tools", nargs="+", default=None, help="tool file names (default: every tools/*.py)")
    parser.add_argument("--max-ms", type=float, nargs="?", const=TARGET_MS, default=None,
                        help=f"exit 1 when a tool's median is over this (alone: {TARGET_MS:.0f}); also the target")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = args.tools or tool_names()
    missing = [n for n in names if not (TOOLS_DIR / n).is_file()]
    if missing:
        parser.error(f"not in tools/: {', '.join(missing)} (have: {', '.join(tool_names())})")
    target = args.max_ms if args.max_ms is not None else TARGET_MS
    commands = {name: [sys.executable, str(TOOLS_DIR / name), "--help"] for name in names}
    commands[REFERENCE] = [sys.executable, "-c", "pass"]
    load_before = os.getloadavg()[0]
    times, codes = measure(commands, args.repeat)
    load_after = os.getloadavg()[0]

    rows, over, failed = [], [], []
    for name in names:
        median, best = statistics.median(times[name]), min(times[name])
        status = "OK" if median <= target else "OVER"
        if codes[name]:
            status = f"FAILED (exit {codes[name]})"
            failed.append(name)
        elif median > target:
            over.append(name)
        rows.append([name, f"{median:.0f}", f"{best:.0f}", f"{target:.0f}", f"{median / target:.2f}", status])
    print(tabulate(rows, headers=["tool", "median ms", "best ms", "target ms", "ratio", "status"],
                   colalign=("left", "right", "right", "right", "right", "left"), disable_numparse=True))
    ref = times[REFERENCE]
    print(f"reference `{REFERENCE}`: median {statistics.median(ref):.0f} ms, best {min(ref):.0f} ms "
          f"({args.repeat} runs each; interpreter {sys.executable})")
    print(f"load average (1 min) before / after: {load_before:.2f} / {load_after:.2f} on {os.cpu_count()} CPUs"
          + ("  -- busy machine: numbers are pessimistic" if max(load_before, load_after) > 0.5 * os.cpu_count()
             else ""))
    if failed:
        print(f"--help failed for: {', '.join(failed)}")
        return 1
    if args.max_ms is not None and over:
        print(f"over {target:.0f} ms: {', '.join(over)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
