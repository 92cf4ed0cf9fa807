"""Tracking validation: at each evaluation the trackers run over the val MOT sequences on the boxes of the same
validation pass that gave val loss and mAP, and the checkpoint chosen as ``best_ckpt.pth`` may be the best tracker.

Why: the best-mAP epoch is not the best tracking epoch (a later epoch can raise MOTA and IDSW together), and
tracking is what the detector is for. The detections cost nothing extra (they come from the pass that already
runs); tracking a few thousand frames is cheap next to it.

The numbers equal what ``tools/track_eval.py --ckpt <that epoch> --split val`` reports with its defaults: the same
boxes (``validation.tracking_boxes`` is the tracking detector's ``image_boxes`` rule), the same score filter
(``tracking_val_conf``, 0.1 as track_eval's ``--conf``), the trackers' default configs, ``mot.runner`` and
``mot.evaluate`` at IoU 0.5. COCO val images are matched to MOT frames by the ``sequence`` and ``frame_index`` the
converter writes into every COCO image record.

Settings (``NuScenesExp``): ``tracking_val`` ("auto": on when ``<mot_dir>/val`` holds sequences; True: required;
False: off), ``tracking_val_trackers``, ``tracking_val_conf``, ``mot_dir`` (None: ``<data_dir>/mot``, where
``convert_nuscenes.py --mot`` writes) and ``best_metric`` (:func:`parse_best_metric`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from trackers.config import TRACKER_CONFIGS, TrackerConfig
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.clear import LOWER_IS_BETTER, METRIC_NAMES
from yolox_finetune.mot.evaluate import TrackerCounts, evaluate_sequence
from yolox_finetune.mot.formats import MotRows, list_sequences
from yolox_finetune.mot.runner import Sequence, effective_config, load_sequences, run_trackers

#: values of ``tracking_val``.
TRACKING_VAL_MODES: tuple[Any, ...] = ("auto", True, False)

#: ``best_metric`` names of the detection metrics -> their key in the validation result and metrics.jsonl.
AP_METRICS: dict[str, str] = {"AP50_95": "ap50_95", "AP50": "ap50"}

#: tracking metrics also written to TensorBoard (metrics.jsonl holds every metric of ``METRIC_NAMES``).
TENSORBOARD_METRICS: tuple[str, ...] = ("HOTA", "MOTA", "IDF1", "IDSW", "DetA", "AssA", "FP", "FN")

#: IoU of a match in the CLEAR and identity metrics (track_eval's ``--iou`` default).
IOU_THRESHOLD = 0.5


# ---------------------------------------------------------------------------------------------------- best metric
@dataclass(frozen=True)
class BestMetric:
    """What ``best_ckpt.pth`` is chosen by: a detection metric ("AP50_95", "AP50") or ``[-]METRIC:tracker``."""

    name: str  # as the exp writes it, e.g. "HOTA:botsort", "-IDSW:bytetrack", "AP50_95"
    metric: str  # "AP50_95", "AP50" or a tracking metric of METRIC_NAMES
    tracker: str | None = None  # None for a detection metric
    lower_is_better: bool = False

    @property
    def needs_tracking(self) -> bool:
        return self.tracker is not None

    @property
    def label(self) -> str:
        """For log lines: "AP50:95", "HOTA of botsort", "IDSW of bytetrack (lower is better)"."""
        if self.tracker is None:
            return self.metric.replace("_", ":")
        return f"{self.metric} of {self.tracker}" + (" (lower is better)" if self.lower_is_better else "")

    def value(self, ap: dict[str, Any] | None, tracking: dict[str, dict[str, Any]] | None) -> float | None:
        """This metric in an evaluation (``ap``: the validation result or epoch record; ``tracking``: tracker ->
        metrics); None when it was not computed or is undefined (no ground truth)."""
        if self.tracker is None:
            raw = (ap or {}).get(AP_METRICS[self.metric])
        else:
            raw = ((tracking or {}).get(self.tracker) or {}).get(self.metric)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            return None
        return float(raw)

    def better(self, value: float | None, best: float | None) -> bool:
        """Is ``value`` strictly better than ``best`` (None: nothing yet)? Ties keep the earlier epoch."""
        if value is None:
            return False
        if best is None:
            return True
        return value < best if self.lower_is_better else value > best


def parse_best_metric(text: Any, where: str = "exp") -> BestMetric:
    """``best_metric`` -> BestMetric, or one UserError line naming what is allowed.

    "AP50_95" and "AP50" are COCO mAP; "METRIC:tracker" a tracking metric of one tracker (MOTA, IDF1, HOTA, ...),
    with a leading '-' where lower is better ("-IDSW:bytetrack"): the sign must match the metric, so a typo cannot
    silently pick the worst checkpoint.
    """
    choices = (f"'AP50_95', 'AP50' or 'METRIC:TRACKER' with METRIC one of {', '.join(METRIC_NAMES)} (a leading '-' "
               f"for the lower-is-better {', '.join(sorted(LOWER_IS_BETTER))}) and TRACKER one of "
               f"{', '.join(TRACKER_CONFIGS)}, e.g. 'HOTA:botsort' or '-IDSW:bytetrack'")
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{where}: best_metric must be {choices}; got {text!r}")
    name = text.strip()
    if name in AP_METRICS:
        return BestMetric(name, name)
    lower = name.startswith("-")
    metric, sep, tracker = name.lstrip("-").partition(":")
    if not sep:
        upper = {k.upper(): k for k in AP_METRICS}
        hint = f"; did you mean {upper[name.upper()]!r}?" if name.upper() in upper else ""
        raise UserError(f"{where}: unknown best_metric {name!r}{hint}; use {choices}")
    if metric not in METRIC_NAMES:
        raise UserError(f"{where}: best_metric {name!r} names an unknown tracking metric {metric!r}; use {choices}")
    if tracker not in TRACKER_CONFIGS:
        raise UserError(f"{where}: best_metric {name!r} names an unknown tracker {tracker!r}; trackers are "
                        f"{', '.join(TRACKER_CONFIGS)}")
    if lower != (metric in LOWER_IS_BETTER):
        fixed = f"-{metric}:{tracker}" if metric in LOWER_IS_BETTER else f"{metric}:{tracker}"
        side = "lower" if metric in LOWER_IS_BETTER else "higher"
        raise UserError(f"{where}: best_metric {name!r}: {metric} is better when {side}; write {fixed!r}")
    return BestMetric(name, metric, tracker, lower)


def validate_tracking_settings(exp: Any, where: str) -> BestMetric:
    """Check the exp's tracking-validation block and ``best_metric`` before anything runs (one UserError line)."""
    if exp.tracking_val not in TRACKING_VAL_MODES or not isinstance(exp.tracking_val, (str, bool)):
        raise UserError(f"{where}: tracking_val must be 'auto', True or False, not {exp.tracking_val!r}")
    trackers = exp.tracking_val_trackers
    if isinstance(trackers, str) or not isinstance(trackers, (tuple, list)) or not trackers:
        raise UserError(f"{where}: tracking_val_trackers must be a non-empty tuple of tracker names "
                        f"({', '.join(TRACKER_CONFIGS)}), not {trackers!r}")
    unknown = [t for t in trackers if t not in TRACKER_CONFIGS]
    if unknown:
        raise UserError(f"{where}: unknown tracker(s) {unknown} in tracking_val_trackers; trackers are "
                        f"{', '.join(TRACKER_CONFIGS)}")
    conf = exp.tracking_val_conf
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
        raise UserError(f"{where}: tracking_val_conf must be a score in [0, 1], not {conf!r}")
    best = parse_best_metric(exp.best_metric, where)
    if best.needs_tracking:
        if exp.tracking_val is False:
            raise UserError(f"{where}: best_metric {best.name!r} is a tracking metric but tracking_val is False; "
                            f"set tracking_val 'auto' (or True) or choose best_metric 'AP50_95'")
        if best.tracker not in trackers:
            raise UserError(f"{where}: best_metric {best.name!r} needs tracker {best.tracker!r}, which "
                            f"tracking_val_trackers {tuple(trackers)} does not run; add it there")
    return best


# ---------------------------------------------------------------------------------------------------- the runner
def mot_val_root(exp: Any) -> Path:
    """Where the val MOT sequences are: ``<mot_dir>/val``, ``mot_dir`` defaulting to ``<data_dir>/mot``."""
    return Path(exp.mot_dir if exp.mot_dir else Path(exp.data_dir) / "mot") / "val"


@dataclass
class TrackingValidation:
    """The val sequences, the trackers and how COCO val images map to sequence frames."""

    sequences: list[Sequence]
    #: per sequence: (COCO image id, frame number) of its val images, in frame order
    images_of_sequence: list[list[tuple[int, int]]]
    configs: dict[str, TrackerConfig]
    conf: float
    root: Path

    def evaluate(self, boxes: dict[int, np.ndarray]) -> dict[str, dict[str, Any]]:
        """tracker -> overall metrics (``METRIC_NAMES``, ratios in percent) over every val sequence, from
        ``boxes``: image id -> (N, 6) [x1, y1, x2, y2, score, class] of the validation pass."""
        runs = [(name, config, self.conf) for name, config in self.configs.items()]
        counts = {name: TrackerCounts() for name in self.configs}
        for index, seq in enumerate(self.sequences):
            detections = self._detections(index, boxes)
            results = run_trackers(runs, detections, seq.num_frames, seq.frame_rate, seq.images, seq.image_size)
            for name, rows in zip(self.configs, results):
                counts[name].add_sequence(seq.name, evaluate_sequence(seq.gt, rows, IOU_THRESHOLD,
                                                                       scored_frames=seq.scored_frames))
        return {name: c.overall().metrics() for name, c in counts.items()}

    def _detections(self, index: int, boxes: dict[int, np.ndarray]) -> MotRows:
        """One sequence's detections as MOT det rows (xywh), frames in time order, each frame's boxes in the
        detector's order (the order track_eval's det files hold them in)."""
        frames, tables = [], []
        for img_id, frame in self.images_of_sequence[index]:
            table = boxes.get(img_id)
            if table is None:
                raise RuntimeError(f"the validation pass gave no boxes for val image {img_id}")
            frames.append(np.full(len(table), frame, np.int64))
            tables.append(table)
        table = np.concatenate(tables) if tables else np.zeros((0, 6))
        frame = np.concatenate(frames) if frames else np.zeros(0, np.int64)
        n = len(table)
        xywh = np.column_stack([table[:, :2], table[:, 2:4] - table[:, :2]])
        return MotRows(frame, np.full(n, -1, np.int64), xywh, table[:, 4], table[:, 5].astype(np.int64), np.ones(n),
                       fmt="det")

    def describe(self) -> str:
        frames = sum(len(images) for images in self.images_of_sequence)
        return (f"tracking validation on: {', '.join(self.configs)} over {len(self.sequences)} val sequence(s) "
                f"({frames} frames) in {self.root}, detections of the validation pass with score >= {self.conf:g}")


def prepare_tracking_validation(exp: Any, val_dataset: Any,
                                best_metric: BestMetric | None = None) -> TrackingValidation | None:
    """The tracking validation of a run, or None when it is off (``auto`` without val MOT sequences says so in one
    info line). ``tracking_val`` True, or a tracking ``best_metric``, makes every reason for "off" an error."""
    mode = exp.tracking_val
    if mode is False:
        return None
    if mode is True:
        required_by, other_fix = "tracking_val is True", "or set tracking_val 'auto' or False"
    elif best_metric is not None and best_metric.needs_tracking:
        required_by, other_fix = (f"best_metric {best_metric.name!r} is a tracking metric",
                                  "or choose best_metric 'AP50_95'")
    else:
        required_by, other_fix = None, ""

    def off(reason: str, fix: str) -> None:
        if required_by:
            raise UserError(f"{required_by} but {reason}; {fix} ({other_fix})")
        logger.info(f"tracking validation off: {reason} ({fix} to turn it on)")

    if val_dataset is None:
        return off("no validation runs (eval_interval is 0)", "set eval_interval to 1 or more")
    root = mot_val_root(exp)
    try:
        names = list_sequences(root)
    except UserError:
        return off(f"no val MOT sequences in {root}",
                   "convert with tools/convert_nuscenes.py --mot, or set mot_dir to the folder holding val/")
    sequences = load_sequences(root, with_images=True)
    index_of = {name: i for i, name in enumerate(names)}
    frame_of_image: dict[int, tuple[int, int]] = {}
    taken: dict[tuple[int, int], Any] = {}
    problems: list[str] = []
    for img_id, info in sorted(val_dataset.coco.imgs.items()):
        seq_name, frame = info.get("sequence"), info.get("frame_index")
        if seq_name is None or frame is None:
            problems.append(f"val image {info.get('file_name', img_id)} has no 'sequence'/'frame_index' (written by "
                            f"tools/convert_nuscenes.py)")
            break
        if seq_name not in index_of:
            problems.append(f"val image {info.get('file_name', img_id)} belongs to sequence {seq_name}, which "
                            f"{root} does not hold")
            break
        seq = sequences[index_of[seq_name]]
        if seq.images and int(frame) not in seq.images:
            problems.append(f"val image {info.get('file_name', img_id)} is frame {frame} of {seq_name}, which has no "
                            f"such frame in {root / seq_name / seq.info.im_dir}")
            break
        if (index_of[seq_name], int(frame)) in taken:
            problems.append(f"val images {taken[(index_of[seq_name], int(frame))]} and {info.get('file_name', img_id)} "
                            f"are both frame {frame} of {seq_name}")
            break
        taken[(index_of[seq_name], int(frame))] = info.get("file_name", img_id)
        frame_of_image[int(img_id)] = (index_of[seq_name], int(frame))
    images_of_sequence: list[list[tuple[int, int]]] = [[] for _ in sequences]
    for img_id, (seq_index, frame) in frame_of_image.items():
        images_of_sequence[seq_index].append((img_id, frame))
    for images in images_of_sequence:
        images.sort(key=lambda item: item[1])
    covered = {i for i, images in enumerate(images_of_sequence) if images}
    if not problems and len(covered) < len(sequences):
        missing = [s.name for i, s in enumerate(sequences) if i not in covered]
        problems.append(f"{len(missing)} sequence(s) of {root} (e.g. {missing[0]}) have no image in "
                        f"{exp.annotation_path('val')}")
    if problems:
        fix = (f"convert again so that {exp.annotation_path('val')} and {root} come from one conversion "
               f"(tools/convert_nuscenes.py --mot)")
        if required_by:
            raise UserError(f"{required_by} but {problems[0]}; {fix} ({other_fix})")
        logger.warning(f"tracking validation off: {problems[0]}; {fix}")
        return None
    have_images = all(s.images for s in sequences)
    configs = {}
    for name in exp.tracking_val_trackers:
        config, note = effective_config(name, TRACKER_CONFIGS[name](), have_images)
        if note:
            logger.warning(note)
        configs[name] = config
    conf = float(exp.tracking_val_conf)
    if float(exp.test_conf) > conf:
        logger.warning(f"test_conf {exp.test_conf} is above tracking_val_conf {conf:g}: validation drops boxes the "
                       f"trackers would see in track_eval; lower test_conf to {conf:g} or below")
    validation = TrackingValidation(sequences, images_of_sequence, configs, conf, root)
    logger.info(validation.describe())
    return validation


def tracking_summary(tracking: dict[str, dict[str, Any]]) -> str:
    """One log line's worth: 'bytetrack HOTA 41.2 MOTA 35.0 IDF1 48.3 IDSW 12 | botsort ...'."""
    def cell(value: Any, digits: str) -> str:
        return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else \
            format(value, digits)

    return " | ".join(f"{name} HOTA {cell(m.get('HOTA'), '.1f')} MOTA {cell(m.get('MOTA'), '.1f')} "
                      f"IDF1 {cell(m.get('IDF1'), '.1f')} IDSW {cell(m.get('IDSW'), 'd')}"
                      for name, m in tracking.items())


def json_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics safe for strict JSON: NaN/inf (undefined, e.g. MOTA without ground truth) become None."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}

