"""Converter re-projection vs nuscenes-devkit's export_2d_annotations_as_json.py, over the same tables.

    python benchmarks/bench_convert.py                       # generated 1600x900 synthetic tables
    python benchmarks/bench_convert.py --dataroot /data/sets/nuscenes --version v1.0-mini

Both paths turn every camera keyframe's annotations (all categories and visibilities, as the devkit script does)
into 2D boxes; table loading is timed separately. Prints throughput side by side, the ratio (target >= 10x), and
checks that the boxes are identical (within 0.01 px). Images where the devkit raises (degenerate hulls) are
excluded from the comparison and reported.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from nuscenes.nuscenes import NuScenes
from nuscenes.scripts import export_2d_annotations_as_json as devkit_export
from tabulate import tabulate

from yolox_finetune.nuscenes.convert import build_scene_jobs, convert_nuscenes, reproject_scene
from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION, make_synthetic_nuscenes
from yolox_finetune.nuscenes.tables import load_tables

TARGET_RATIO = 10.0


def run_devkit(dataroot: Path, version: str, limit: int | None) -> tuple[dict, list[str], float, float, list[str]]:
    """Boxes, image tokens, re-projection and load seconds, images where the script raised."""
    start = time.perf_counter()
    nusc = NuScenes(version=version, dataroot=str(dataroot), verbose=False)
    load_s = time.perf_counter() - start
    devkit_export.nusc = nusc  # the script's functions read this module global
    tokens = [s["token"] for s in nusc.sample_data if s["sensor_modality"] == "camera" and s["is_key_frame"]]
    tokens = tokens[:limit] if limit else tokens
    boxes, crashed = {}, []
    start = time.perf_counter()
    for token in tokens:
        try:
            for record in devkit_export.get_2d_boxes(token, ["", "1", "2", "3", "4"]):
                boxes[(token, record["sample_annotation_token"])] = record["bbox_corners"]
        except AttributeError:
            crashed.append(token)
    return boxes, tokens, time.perf_counter() - start, load_s, crashed


def run_converter(dataroot: Path, version: str, tokens: set[str]) -> tuple[dict, float, float, int, int, int]:
    """Boxes of the devkit's images, re-projection and load seconds, images, all boxes, degenerate count."""
    start = time.perf_counter()
    tables = load_tables(dataroot, version)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    jobs = build_scene_jobs(tables, tables.camera_channels(), class_map=None)
    results = [reproject_scene(job) for job in jobs]
    run_s = time.perf_counter() - start
    boxes, degenerate, total = {}, 0, 0
    for frames, skipped in results:
        degenerate += skipped
        for frame in frames:
            total += len(frame["boxes"])
            if frame["sample_data_token"] in tokens:
                for box in frame["boxes"]:
                    boxes[(frame["sample_data_token"], box["sample_annotation_token"])] = box["xyxy"]
    images = sum(len(frames) for frames, _ in results)
    return boxes, run_s, load_s, images, total, degenerate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataroot", help="existing release; default: generate synthetic tables")
    parser.add_argument("--version", default=SYNTHETIC_VERSION)
    parser.add_argument("--scenes", type=int, default=8, help="synthetic scenes to generate")
    parser.add_argument("--samples", type=int, default=20, help="keyframes per synthetic scene")
    parser.add_argument("--devkit-limit", type=int, default=None, help="only run the devkit on the first N images")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        dataroot = Path(args.dataroot) if args.dataroot else Path(tmp) / "synthetic"
        if not args.dataroot:
            make_synthetic_nuscenes(dataroot, scenes=args.scenes, samples=args.samples, seed=0,
                                    image_size=(1600, 900), sweeps=0, render_images=False, progress=False)
        ref, tokens, devkit_s, devkit_load_s, crashed = run_devkit(dataroot, args.version, args.devkit_limit)
        ours, ours_s, ours_load_s, our_images, our_boxes, degenerate = run_converter(dataroot, args.version,
                                                                                      set(tokens))
        start = time.perf_counter()
        # a tables-only release (no JPEGs rendered): missing images are expected here
        convert_nuscenes(dataroot, args.version, Path(tmp) / "converted", allow_missing=True, progress=False)
        end_to_end_s = time.perf_counter() - start

    comparable = {key for key in ours if key[0] not in set(crashed)}
    same_keys = comparable == set(ref)
    worst = max((float(np.abs(np.subtract(ours[k], ref[k])).max()) for k in ref if k in ours), default=0.0)
    devkit_rate = len(tokens) / devkit_s
    ours_rate = our_images / ours_s
    rows = [
        ["nuscenes-devkit get_2d_boxes", len(tokens), len(ref), f"{devkit_load_s:.2f}", f"{devkit_s:.2f}",
         f"{devkit_rate:.0f}", f"{len(ref) / devkit_s:.0f}"],
        ["yolox_finetune converter", our_images, our_boxes, f"{ours_load_s:.2f}", f"{ours_s:.2f}",
         f"{ours_rate:.0f}", f"{our_boxes / ours_s:.0f}"],
    ]
    print(tabulate(rows, headers=["path", "images", "boxes", "load s", "reproject s", "images/s", "boxes/s"]))
    ratio = ours_rate / devkit_rate
    print(f"\nthroughput ratio (images/s): {ratio:.1f}x  (target >= {TARGET_RATIO:.0f}x: "
          f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})")
    identical = same_keys and worst < 0.01
    print(f"boxes identical: {identical} (same (image, annotation) pairs: {same_keys}, "
          f"max |diff| {worst:.2e} px); devkit crashed on {len(crashed)} image(s), converter skipped "
          f"{degenerate} degenerate box(es)")
    print(f"full convert_nuscenes (load tables, 7 classes, write COCO): {end_to_end_s:.2f} s")
    if not identical:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
