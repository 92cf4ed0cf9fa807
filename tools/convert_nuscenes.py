"""Convert nuScenes camera keyframes to COCO detection files (and MOT sequences) split by scene.

    python tools/convert_nuscenes.py --dataroot data/nuscenes --version v1.0-trainval --out data/nusc_coco --mot
"""

from __future__ import annotations

import argparse
import json

from yolox_finetune.core.errors import cli_entry


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataroot", required=True, help="folder holding samples/ and the v1.0-* table folders")
    parser.add_argument("--version", required=True, help="table folder, e.g. v1.0-trainval, v1.0-mini, v1.0-synthetic")
    parser.add_argument("--out", required=True, help="output folder (annotations/, mot/, samples -> source link)")
    parser.add_argument("--cameras", nargs="+", default=["all"], help="'all' or camera channels such as CAM_FRONT")
    parser.add_argument("--min-visibility", type=int, default=0, choices=range(5), metavar="0..4",
                        help="drop boxes below this nuScenes visibility level (0 keeps all)")
    parser.add_argument("--val-ratio", type=float, default=0.2, help="share of training scenes held out as val")
    parser.add_argument("--test-ratio", type=float, default=0.2,
                        help="share of scenes used as test for releases outside the official split lists")
    parser.add_argument("--seed", type=int, default=42, help="seed of the scene split")
    parser.add_argument("--class-map", default=None, help='JSON file {"nuscenes.category": "class name", ...}')
    parser.add_argument("--mot", action="store_true", help="also write MOTChallenge sequences under OUT/mot/<split>/")
    parser.add_argument("--workers", type=int, default=1, help="processes for the per-scene re-projection")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT once the new conversion is complete")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    return parser.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from yolox_finetune.nuscenes.convert import convert_nuscenes, summary_table  # heavy: after parsing, not for --help

    summary = convert_nuscenes(
        args.dataroot, args.version, args.out, cameras=args.cameras, min_visibility=args.min_visibility,
        val_ratio=args.val_ratio, test_ratio=args.test_ratio, seed=args.seed, class_map=args.class_map,
        mot=args.mot, workers=args.workers, overwrite=args.overwrite,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(summary_table(summary))
    print(f"split policy: {summary['split_policy']}; skipped degenerate boxes: {summary['skipped_degenerate']}; "
          f"MOT sequences: {summary['mot_sequences']}; written to {summary['out']}")


if __name__ == "__main__":
    main()
