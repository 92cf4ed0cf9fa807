"""Draw tracks on a sequence's frames, with the evaluator's events, as an MP4 or a PNG strip.

A number says IDSW went up at epoch 30; a picture says why: which two objects swapped ids, where the false
positives sit. Each track id keeps one colour; false positives get a red ``FP`` tag, the box that switched id a
magenta ``IDSW`` tag; with ground truth beside (``gt_panel``) missed objects are orange. Events come from
motmetrics' own accumulator, class by class, after tracker boxes on ignore entries are dropped as the evaluator
drops them, and on annotated frames only (all-frames sequences).
"""

from __future__ import annotations

import colorsys
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import cv2
import motmetrics as mm
import numpy as np

from yolox_finetune.core.atomic_io import atomic_open, temp_prefix, umask_mode
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.output_dir import remove_stale_temps
from yolox_finetune.mot.clear import iou_matrix
from yolox_finetune.mot.evaluate import class_units
from yolox_finetune.mot.formats import MotRows

#: BGR colours of the event tags.
FP_COLOUR, IDSW_COLOUR, MISS_COLOUR, IGNORE_COLOUR = (0, 0, 255), (255, 0, 255), (0, 165, 255), (128, 128, 128)
#: the writers by output suffix.
OUTPUT_SUFFIXES: tuple[str, ...] = (".mp4", ".png")

Events = dict[int, dict[str, set[int]]]


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per id (golden-ratio hues), the same in every picture of a run."""
    hue = (int(track_id) * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def tracking_events(gt: MotRows, results: MotRows, iou_threshold: float = 0.5,
                    annotated: list[int] | None = None) -> Events:
    """frame -> {"FP": tracker ids, "IDSW": tracker ids, "MISS": gt ids}, class-aware, by motmetrics' rules."""
    events: Events = defaultdict(lambda: {"FP": set(), "IDSW": set(), "MISS": set()})
    if annotated is not None:
        keep = set(annotated)
        results = results.select(np.isin(results.frame, list(keep)))
        gt = gt.select(np.isin(gt.frame, list(keep)))
    for _, g, r in class_units(gt, results):
        acc = mm.MOTAccumulator(auto_id=False)
        g_frames, r_frames = g.frame_slices(), r.frame_slices()
        for frame in sorted(set(g_frames) | set(r_frames)):
            gi = g_frames.get(frame, np.zeros(0, np.int64))
            ri = r_frames.get(frame, np.zeros(0, np.int64))
            # motmetrics' own distances.iou_matrix calls np.asfarray, which numpy 2 removed: same arithmetic, ours
            dist = 1.0 - iou_matrix(g.box[gi], r.box[ri])
            dist[dist > 1.0 - iou_threshold] = np.nan
            acc.update(g.track_id[gi].tolist(), r.track_id[ri].tolist(), dist, frameid=frame)
        table = acc.mot_events
        for (frame, _), row in table.iterrows():
            kind = row["Type"]
            if kind == "FP":
                events[int(frame)]["FP"].add(int(row["HId"]))
            elif kind == "SWITCH":
                events[int(frame)]["IDSW"].add(int(row["HId"]))
            elif kind == "MISS":
                events[int(frame)]["MISS"].add(int(row["OId"]))
    return dict(events)


def _label(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float) -> None:
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    y = max(y, h + base)
    cv2.rectangle(image, (x, y - h - base), (x + w, y), colour, -1)
    luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    cv2.putText(image, text, (x, y - base), font, scale, (0, 0, 0) if luminance > 140 else (255, 255, 255),
                thickness, cv2.LINE_AA)


def draw_tracks(image: np.ndarray, rows: MotRows, class_names: dict[int, str], frame_events: dict[str, set[int]],
                title: str = "") -> np.ndarray:
    """Boxes of one frame with ``id class score``; FP and IDSW boxes tagged."""
    out = image.copy()
    scale = max(0.35, out.shape[0] / 1200)
    for (x, y, w, h), track, cls, score in zip(rows.box, rows.track_id, rows.class_id, rows.score):
        p1, p2 = (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h)))
        colour = id_colour(track)
        cv2.rectangle(out, p1, p2, colour, max(1, round(scale * 3)))
        name = class_names.get(int(cls), str(int(cls))) if cls > 0 else ""
        _label(out, f"{int(track)} {name} {score:.2f}".replace("  ", " "), p1[0], p1[1], colour, scale)
        for tag, tag_colour in (("FP", FP_COLOUR), ("IDSW", IDSW_COLOUR)):
            if int(track) in frame_events.get(tag, ()):
                cv2.rectangle(out, p1, p2, tag_colour, max(2, round(scale * 6)))
                _label(out, tag, p1[0], p2[1] + int(30 * scale), tag_colour, scale)
    if title:
        _label(out, title, 4, int(30 * scale), (255, 255, 255), scale * 1.2)
    return out


def draw_ground_truth(image: np.ndarray, gt: MotRows, class_names: dict[int, str], missed: set[int],
                      title: str = "ground truth") -> np.ndarray:
    """Ground-truth boxes with their ids; ignore entries grey, missed objects orange."""
    out = image.copy()
    scale = max(0.35, out.shape[0] / 1200)
    for (x, y, w, h), track, cls, consider in zip(gt.box, gt.track_id, gt.class_id, gt.score):
        p1, p2 = (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h)))
        colour = IGNORE_COLOUR if consider < 1 else MISS_COLOUR if int(track) in missed else (0, 200, 0)
        cv2.rectangle(out, p1, p2, colour, max(1, round(scale * 3)))
        tag = "ignore" if consider < 1 else "MISS" if int(track) in missed else class_names.get(int(cls), "")
        _label(out, f"{int(track)} {tag}", p1[0], p1[1], colour, scale)
    _label(out, title, 4, int(30 * scale), (255, 255, 255), scale * 1.2)
    return out


def render_frames(images: dict[int, Path], frames: list[int], results: MotRows | None, gt: MotRows | None,
                  class_names: dict[int, str], events: Events | None = None, gt_panel: bool = False,
                  scale: float = 1.0, annotated: set[int] | None = None):
    """Yield one BGR picture per frame: tracks (left) and, with ``gt_panel``, ground truth (right)."""
    events = events or {}
    by_result = results.frame_slices() if results is not None else {}
    by_gt = gt.frame_slices() if gt is not None else {}
    empty = np.zeros(0, np.int64)
    for frame in frames:
        image = cv2.imread(str(images[frame]))
        if image is None:
            raise UserError(f"cannot read frame image {images[frame]}; check the sequence's img1/ links")
        frame_events = events.get(frame, {})
        note = "" if annotated is None else (" (annotated)" if frame in annotated else " (not scored)")
        panels = []
        if results is not None:
            panels.append(draw_tracks(image, results.select(by_result.get(frame, empty)), class_names, frame_events,
                                      f"frame {frame}{note}"))
        if gt is not None and (gt_panel or results is None):
            panels.append(draw_ground_truth(image, gt.select(by_gt.get(frame, empty)), class_names,
                                            frame_events.get("MISS", set())))
        picture = np.concatenate(panels, axis=1) if len(panels) > 1 else panels[0]
        if scale != 1.0:
            picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        yield picture


def write_video(pictures, path: str | os.PathLike, fps: float) -> int:
    """Write an MP4 (OpenCV's mp4v) atomically; returns the frame count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent, recursive=False, target=path.name)  # of a run killed while writing it
    handle, temp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp.mp4", dir=path.parent)
    os.close(handle)
    os.chmod(temp, umask_mode(0o666))  # mkstemp makes 0600 files; give the video the usual permissions
    writer, count = None, 0
    try:
        for picture in pictures:
            if writer is None:
                height, width = picture.shape[:2]
                writer = cv2.VideoWriter(temp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
                if not writer.isOpened():
                    raise UserError(f"OpenCV cannot write MP4 video to {path}; write a .png strip instead")
            writer.write(picture)
            count += 1
        if writer is not None:
            writer.release()
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return count


def write_strip(pictures, path: str | os.PathLike, columns: int = 4) -> int:
    """Tile the pictures into one PNG (``columns`` per row), written atomically; returns the tile count."""
    tiles = list(pictures)
    if not tiles:
        raise UserError(f"no frames to draw into {path}")
    height, width = tiles[0].shape[:2]
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * height, columns * width, 3), np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * height:(r + 1) * height, c * width:(c + 1) * width] = cv2.resize(tile, (width, height))
    ok, data = cv2.imencode(".png", sheet)
    if not ok:
        raise UserError(f"OpenCV could not encode the strip for {path}")
    remove_stale_temps(Path(path).parent, recursive=False, target=Path(path).name)  # of a killed earlier run
    with atomic_open(path, "wb") as handle:
        handle.write(data.tobytes())
    return len(tiles)
