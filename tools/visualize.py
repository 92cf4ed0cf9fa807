"""Draw a tracker's output on a MOT sequence: boxes with track ids (one colour per id), class and score, ID switches
and false positives tagged from the evaluator's events, ground truth optionally beside, as an MP4 or a PNG strip.

    python tools/visualize.py --seq OUT/mot/test/SEQ --results TRACK_OUT/bytetrack/data/SEQ.txt --gt \\
        --out tracks.mp4 [--frames 1:40] [--scale 0.5]
    python tools/visualize.py --seq SEQ --results RES.txt --out strip.png [--max-frames 8] [--columns 4]

Without --results the ground truth alone is drawn. On all-frames sequences (convert_nuscenes --sweeps) events are
computed on the annotated frames only, as the evaluator scores them, and each frame says whether it is scored.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from yolox_finetune.core.errors import UserError, cli_entry


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", required=True, type=Path, help="MOT sequence folder (seqinfo.ini, img1/, gt/gt.txt)")
    parser.add_argument("--results", type=Path, default=None, help="tracker results file of this sequence")
    parser.add_argument("--gt", action="store_true", help="draw the ground truth in a panel beside the tracks")
    parser.add_argument("--out", required=True, type=Path, help="output .mp4 (video) or .png (strip of frames)")
    parser.add_argument("--frames", default=None, metavar="A:B", help="frame range, inclusive (default: all)")
    parser.add_argument("--max-frames", type=int, default=8,
                        help="PNG strip: at most this many frames, evenly spaced over the range (default 8)")
    parser.add_argument("--columns", type=int, default=4, help="PNG strip: frames per row (default 4)")
    parser.add_argument("--scale", type=float, default=1.0, help="resize factor of the output (default 1)")
    parser.add_argument("--fps", type=float, default=None, help="MP4 frame rate (default: the sequence's)")
    parser.add_argument("--iou", type=float, default=0.5, help="IoU threshold of the events (default 0.5)")
    parser.add_argument("--no-events", action="store_true", help="do not evaluate; draw the boxes only")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return parser.parse_args(argv)


def frame_range(text: str | None, available: list[int]) -> list[int]:
    if text is None:
        return available
    try:
        first, last = (int(part) for part in text.split(":"))
    except ValueError:
        raise UserError(f"--frames {text!r} is not a range A:B of frame numbers (e.g. 1:40)") from None
    if first > last:
        raise UserError(f"--frames {text}: the first frame comes after the last; pass A:B with A <= B")
    chosen = [f for f in available if first <= f <= last]
    if not chosen:
        raise UserError(f"--frames {text}: the sequence has no image in that range (frames {available[0]}.."
                        f"{available[-1]})")
    return chosen


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    suffix = args.out.suffix.lower()
    if suffix not in (".mp4", ".png"):
        raise UserError(f"--out {args.out}: write a .mp4 video or a .png strip")
    if args.out.exists() and not args.overwrite:
        raise UserError(f"--out {args.out} exists; pass --overwrite to replace it or choose another name")
    if not 0 < args.scale <= 4:
        raise UserError(f"--scale {args.scale} must be in (0, 4]")
    if args.max_frames < 1 or args.columns < 1:
        raise UserError(f"--max-frames {args.max_frames} and --columns {args.columns} must be 1 or more")
    if args.fps is not None and not 0 < args.fps <= 1000:
        raise UserError(f"--fps {args.fps}: give the video's frames per second, above 0")
    if not 0 < args.iou <= 1:
        raise UserError(f"--iou {args.iou}: the IoU of a match lies in (0, 1]")
    if not args.seq.is_dir():
        raise UserError(f"--seq {args.seq} is not a folder; pass a MOT sequence folder (seqinfo.ini, img1/, gt/)")
    import numpy as np

    from yolox_finetune.analysis.visualize import (
        render_frames,
        tracking_events,
        write_strip,
        write_video,
    )
    from yolox_finetune.core.classes import CLASS_NAMES
    from yolox_finetune.mot.formats import frame_images, read_annotated_frames, read_gt, read_results, read_seqinfo

    info = read_seqinfo(args.seq)
    images = frame_images(args.seq)
    if not images:
        raise UserError(f"{args.seq}: no frame images under {info.im_dir}/; visualize needs the sequence's images")
    last_frame = info.seq_length or max(images)  # a results file of another sequence goes past it: one error line
    gt_file = args.seq / "gt" / "gt.txt"
    gt = read_gt(gt_file, seq_length=last_frame) if gt_file.is_file() else None
    if args.gt and gt is None:
        raise UserError(f"--gt: {gt_file} does not exist; drop --gt or pass a sequence with ground truth")
    if args.results is None and gt is None:
        raise UserError(f"nothing to draw: pass --results, or a sequence with {gt_file}")
    results = read_results(args.results, seq_length=last_frame) if args.results is not None else None
    classes_file = args.seq / "classes.json"
    class_names = ({int(k): v for k, v in json.loads(classes_file.read_text(encoding="utf-8"))["classes"].items()}
                   if classes_file.is_file() else {i + 1: n for i, n in enumerate(CLASS_NAMES)})
    annotated = read_annotated_frames(args.seq)
    events = None
    if results is not None and gt is not None and not args.no_events:
        events = tracking_events(gt, results, args.iou, annotated)
    frames = frame_range(args.frames, list(images))
    if suffix == ".png" and len(frames) > args.max_frames:
        frames = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, args.max_frames).round()]
    pictures = render_frames(images, frames, results, gt, class_names, events, args.gt, args.scale,
                             set(annotated) if annotated is not None else None)
    if suffix == ".mp4":
        count = write_video(pictures, args.out, args.fps or info.frame_rate or 10)
    else:
        count = write_strip(pictures, args.out, args.columns)
    switches = sum(len(e["IDSW"]) for e in (events or {}).values())
    false_positives = sum(len(e["FP"]) for e in (events or {}).values())
    summary = f"; {switches} ID switches and {false_positives} false positives tagged" if events is not None else ""
    print(f"wrote {args.out} ({count} frames{summary})")


if __name__ == "__main__":
    main()
