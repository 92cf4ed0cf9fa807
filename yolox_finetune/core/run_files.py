"""The run dir contract: what ``tools/train.py`` writes into ``<output_dir>/<exp_name>/`` and the analysis, the
tracking tools and the demo read back. Named once here so writer and readers cannot drift apart."""

from __future__ import annotations

import json
import os
from typing import Any

#: one JSON object per logged iteration (``"type": "iter"``) and per epoch summary (``"type": "epoch"``).
METRICS_FILE = "metrics.jsonl"
#: the training plan (LR per group per epoch, phases, mosaic), as ``tools/train.py --plan --json`` prints it.
PLAN_FILE = "plan.json"
#: the human-readable training log.
TRAIN_LOG = "train_log.txt"
LATEST_CKPT = "latest_ckpt.pth"
BEST_CKPT = "best_ckpt.pth"
LAST_MOSAIC_CKPT = "last_mosaic_epoch_ckpt.pth"

#: YOLOX's loss components, in the order logs, metrics records and plots use.
LOSS_KEYS: tuple[str, ...] = ("total_loss", "iou_loss", "l1_loss", "conf_loss", "cls_loss")
#: the TensorBoard event files' folder inside the run dir.
TENSORBOARD_DIR = "tensorboard"


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict[str, Any]], list[int]]:
    """The JSON objects of a JSON-lines file and the numbers of the lines that are not one (a line a crash cut
    short, or garbage): the caller decides how to report them; blank lines are neither."""
    records: list[dict[str, Any]] = []
    unreadable: list[int] = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            else:
                unreadable.append(number)
    return records, unreadable
