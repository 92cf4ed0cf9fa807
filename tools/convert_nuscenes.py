"""Convert nuScenes camera keyframes to COCO detection files (and MOT sequences) split by scene.

    python tools/convert_nuscenes.py --dataroot data/nuscenes --version v1.0-trainval --out data/nusc_coco --mot

Conventions: scenes are split by nuScenes' official lists where the devkit has them (v1.0-trainval, v1.0-mini,
v1.0-test: official train -> train + a held-out val, official val/test -> test), else by a keyed hash of the scene
name; a release without annotations goes to test only. Every listed image must exist (else one error line); so
must every table, field and token the tables refer to, and every category a class map names. A train split left
without boxes is an error; what is skipped (degenerate boxes, unmapped categories, ...) is counted in the summary.
gt.txt: frame,id,x,y,w,h,consider,class,visibility with frames numbered by time, consider 0 = ignore entry,
classes 1 car, 2 truck, 3 bus, 4 trailer, 5 pedestrian, 6 motorcycle, 7 bicycle (or MOT17's with
--mot-classes mot17), visibility = share of the projected box inside the image; classes.json in every sequence.
"""

from __future__ import annotations

import argparse
import json

from yolox_finetune.core.errors import cli_entry
from yolox_finetune.nuscenes.split import SPLIT_POLICIES  # light: the devkit is imported only when splitting

#: ``mot_export.MOT_CLASS_SCHEMES``, spelled out so ``--help`` imports no numpy (a test keeps the two equal).
MOT_CLASS_SCHEMES = ("ours", "mot17")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataroot", required=True, help="folder holding samples/ and the v1.0-* table folders")
    parser.add_argument("--version", required=True, help="table folder, e.g. v1.0-trainval, v1.0-mini, v1.0-synthetic")
    parser.add_argument("--out", required=True, help="output folder (annotations/, mot/, samples -> source link)")
    parser.add_argument("--cameras", nargs="+", default=["all"], help="'all' or camera channels such as CAM_FRONT")
    parser.add_argument("--min-visibility", type=int, default=0, choices=range(5), metavar="0..4",
                        help="boxes below this nuScenes visibility level (occlusion over all six cameras) are left "
                             "out of COCO and written to MOT gt.txt as ignore entries (consider 0); 0 keeps all")
    parser.add_argument("--ignore-dropped", action="store_true",
                        help="write objects of dropped look-alike categories to MOT gt.txt as ignore entries of "
                             "the nearest class (police car -> car; ambulance, construction vehicle -> truck; "
                             "stroller, wheelchair -> pedestrian) instead of leaving them as background")
    parser.add_argument("--split-policy", choices=SPLIT_POLICIES, default="auto",
                        help="official: nuScenes' scene lists (official train -> train + val by --val-ratio, "
                             "official val and test -> test); hash: a keyed hash of each scene name (key --seed) "
                             "decides, by --test-ratio then --val-ratio, stable when scenes are added or removed; "
                             "auto (default): official where the devkit lists the release's scenes, else hash")
    parser.add_argument("--val-ratio", type=float, default=0.2, help="share of training scenes held out as val")
    parser.add_argument("--test-ratio", type=float, default=0.2,
                        help="share of scenes used as test under the hash policy")
    parser.add_argument("--seed", type=int, default=42, help="key of the scene hash (the split)")
    class_maps = parser.add_mutually_exclusive_group()
    class_maps.add_argument("--class-map", default=None,
                            help='JSON file {"nuscenes.category": "class name" or null, ...} (or a YAML mapping in '
                                 "a .yaml file) that REPLACES the default map: categories it does not name are "
                                 "dropped; every key must be a full category name of the release (vehicle.bus.rigid, "
                                 "not vehicle.bus)")
    class_maps.add_argument("--class-map-update", default=None,
                            help="JSON file of the same form applied ON TOP of the default map (add or change "
                                 "categories; null drops one)")
    parser.add_argument("--mot", action="store_true",
                        help="also write MOTChallenge sequences under OUT/mot/<split>/<scene>_<CAM>/; gt.txt's "
                             "visibility column is the share of the projected box inside that image (clipped area / "
                             "projected area: truncation at the border, not occlusion)")
    parser.add_argument("--mot-classes", choices=MOT_CLASS_SCHEMES, default="ours",
                        help="class numbering of gt.txt: ours (1 car ... 7 bicycle) or mot17 (pedestrian 1 scored, "
                             "other classes consider 0, pedestrian ignore entries as distractors: for MOTChallenge "
                             "tools such as TrackEval on pedestrians; not for this project's track_eval)")
    parser.add_argument("--sweeps", action="store_true",
                        help="with --mot: also write every camera frame (keyframes and sweeps, 12 Hz on nuScenes) "
                             "as OUT/mot_sweeps/<split>/<scene>_<CAM>/ with ground truth on the keyframes and "
                             "annotated_frames.txt; trackers run on all frames, only keyframes are scored")
    parser.add_argument("--allow-missing", action="store_true",
                        help="skip (and count) listed images that are missing on disk instead of stopping")
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
        class_map_update=args.class_map_update, mot=args.mot, workers=args.workers, overwrite=args.overwrite,
        split_policy_name=args.split_policy, allow_missing=args.allow_missing, ignore_dropped=args.ignore_dropped,
        mot_classes=args.mot_classes, sweeps=args.sweeps,
    )
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(summary_table(summary))
    print(f"split policy: {summary['split_policy']}; skipped degenerate boxes: {summary['skipped_degenerate']}; "
          f"missing images skipped: {summary['missing_images']}; empty scenes: {len(summary['empty_scenes'])}; "
          f"absent cameras: {sum(len(c) for c in summary['absent_cameras'].values())}; "
          f"missing keyframes: {summary['missing_keyframes']}; "
          f"annotations of unmapped categories: {sum(summary['dropped_categories'].values())}; "
          f"MOT sequences: {summary['mot_sequences']}; "
          f"written to {summary['out']}")
    if "mot_sweep_sequences" in summary:
        frames = ", ".join(f"{split} {count}" for split, count in summary["sweep_frames"].items())
        print(f"all-frames sequences (mot_sweeps/): {summary['mot_sweep_sequences']}; frames: {frames}; "
              f"missing sweep images skipped: {summary['missing_sweep_images']}")


if __name__ == "__main__":
    main()
