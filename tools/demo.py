"""The main job on the built-in synthetic dataset, end to end on the CPU: ``make demo`` runs this.

    python tools/demo.py [--out demo_output] [--quick]

Steps (each printed as the command a user can run alone): generate synthetic nuScenes, convert to COCO + MOT,
pre-train a stand-in for COCO weights, fine-tune with progressive unfreezing, track and evaluate, sweep the
confidence threshold, write the analysis report. Re-running replaces the previous demo output; an --out that holds
anything the demo did not write (your own data) is refused before any step starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yolox_finetune.core.errors import cli_entry
from yolox_finetune.demo import DemoSettings, format_headline, run_demo


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="everything goes under this folder")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run on a tiny dataset")
    args = parser.parse_args(argv)
    summary = run_demo(args.out, DemoSettings.quick() if args.quick else DemoSettings())
    print(format_headline(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
