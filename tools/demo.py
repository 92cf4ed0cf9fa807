"""The main job on the built-in synthetic dataset, end to end (on the CPU unless told): ``make demo`` runs this.

    python tools/demo.py [--out demo_output] [--quick] [--device cuda [--fp16]]

Steps (each printed as the command a user can run alone): generate synthetic nuScenes, convert to COCO + MOT,
pre-train a stand-in for COCO weights, fine-tune with progressive unfreezing, track and evaluate, sweep the
confidence threshold, write the analysis report. Re-running replaces the previous demo output; an --out that holds
anything the demo did not write (your own data) is refused before any step starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from yolox_finetune.core.errors import UserError, cli_entry
from yolox_finetune.demo import DemoSettings, format_headline, run_demo


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="everything goes under this folder")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run on a tiny dataset")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default=DemoSettings.device,
                        help="where training and detection run (default: %(default)s, as the README's numbers)")
    parser.add_argument("--fp16", action="store_true", help="mixed-precision training (CUDA only)")
    args = parser.parse_args(argv)
    if args.fp16 and args.device == "cpu":
        raise UserError("demo: --fp16 is mixed precision on a GPU; add --device cuda (or auto), or drop --fp16")
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    settings.device, settings.fp16 = args.device, args.fp16
    summary = run_demo(args.out, settings)
    print(format_headline(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
