"""The one-command demo: synthetic nuScenes -> COCO/MOT (keyframes and every camera frame) -> "pretrained" YOLOX ->
progressive fine-tuning with tracking validation -> ByteTrack/BoT-SORT on keyframes only and on every camera frame
-> confidence sweep in both conf modes -> tracks drawn on a test sequence -> analysis report.

Every step is one of the toolkit's own commands, printed before it runs, so a user can repeat any step alone.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yolox_finetune.core.atomic_io import atomic_write_json
from yolox_finetune.core.errors import UserError
from yolox_finetune.core.formatting import format_number
from yolox_finetune.core.output_dir import claim_output_dir, write_marker
from yolox_finetune.core.run_files import LATEST_CKPT, METRICS_FILE

REPO = Path(__file__).resolve().parents[1]
#: the name the demo marks its output folder with, and what it writes there (anything else is not its own).
TOOL = "demo"
DEMO_ENTRIES = ("nuscenes", "coco", "runs", "report", "demo_summary.json")
#: where the two tracking runs of the test split go, below the demo run's tracking folder.
KEYFRAMES_DIR, ALL_FRAMES_DIR = "best_keyframes", "best"
#: the metrics the headline shows per tracker and frame mode.
HEADLINE_METRICS = ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN")


@dataclass
class DemoSettings:
    """Sizes of the demo; ``quick()`` is the seconds-long variant the test suite runs."""

    scenes: int = 6
    samples: int = 16
    image_size: tuple[int, int] = (800, 450)
    cameras: list[str] = field(default_factory=lambda: ["all"])
    pretrain_overrides: list[str] = field(default_factory=list)
    finetune_overrides: list[str] = field(default_factory=list)
    # swept beside best_ckpt.pth (the demo's "epoch 10 vs epoch 30"); best's detections are cached by step 6 already
    compare_epoch: int = 5
    sweep: str = "0.1:0.5:0.2"  # the trackers' high threshold (tracker mode); 0.7 and above start few tracks here
    workers: int = 2
    sweeps: int = 5  # camera frames between keyframes: 12 Hz at nuScenes' 2 Hz keyframes, as its cameras record
    interpolate: int = 12  # longest track gap filled by interpolation (frames: 1 s at 12 Hz)
    video_frames: int = 60  # frames of the test sequence drawn into the video
    # the README's numbers are the CPU's; on a GPU machine ``--device cuda`` (``--fp16`` adds AMP to training)
    device: str = "cpu"
    fp16: bool = False

    @classmethod
    def quick(cls) -> DemoSettings:
        small = ["max_epoch", "2", "no_aug_epochs", "1", "multiscale_range", "0"]  # loader workers: the exps set none
        return cls(scenes=3, samples=4, image_size=(400, 225), cameras=["CAM_FRONT"],
                   pretrain_overrides=small, finetune_overrides=small, compare_epoch=1, sweep="0.2:0.6:0.2",
                   workers=1, sweeps=2, video_frames=8)


class Pipeline:
    def __init__(self, out: Path, settings: DemoSettings, python: str = sys.executable) -> None:
        self.out = out.resolve()
        self.settings = settings
        self.python = python
        self.env = dict(os.environ, YOLOX_FINETUNE_DATA=str(self.out / "coco"),
                        YOLOX_FINETUNE_OUTPUT=str(self.out / "runs"), PYTHONUNBUFFERED="1")
        self.commands: list[str] = []
        self.timings: dict[str, float] = {}
        self.tracking = self.out / "runs" / "demo" / "tracking"

    def run(self, step: str, args: list[str]) -> None:
        shown = (f"YOLOX_FINETUNE_DATA={shlex.quote(self.env['YOLOX_FINETUNE_DATA'])} "
                 f"YOLOX_FINETUNE_OUTPUT={shlex.quote(self.env['YOLOX_FINETUNE_OUTPUT'])} "
                 f"python {' '.join(shlex.quote(a) for a in args)}")
        self.commands.append(shown)
        step = f"{len(self.commands)}. {step}"
        print(f"\n=== {step}\n$ {shown}", flush=True)
        start = time.time()
        proc = subprocess.run([self.python, *args], cwd=REPO, env=self.env)
        self.timings[step] = time.time() - start
        if proc.returncode != 0:
            raise UserError(f"demo step '{step}' failed (exit {proc.returncode}); its command is above, rerun it "
                            f"alone to see the whole output")

    def train_flags(self) -> list[str]:
        return ["--device", self.settings.device, *(["--fp16"] if self.settings.fp16 else [])]

    # ------------------------------------------------------------------ steps
    def generate(self) -> None:
        s = self.settings
        self.run("generate the synthetic nuScenes dataset (keyframes at 2 Hz, camera sweeps between them)", [
            "tools/make_synthetic_nuscenes.py", "--out", str(self.out / "nuscenes"), "--scenes", str(s.scenes),
            "--samples", str(s.samples), "--seed", "0", "--image-size", f"{s.image_size[0]}x{s.image_size[1]}",
            "--sweeps", str(s.sweeps), "--workers", str(s.workers), "--overwrite"])

    def convert(self) -> None:
        s = self.settings
        self.run("convert it to COCO, keyframe MOT sequences and all-frames MOT sequences", [
            "tools/convert_nuscenes.py", "--dataroot", str(self.out / "nuscenes"), "--version", "v1.0-synthetic",
            "--out", str(self.out / "coco"), "--cameras", *s.cameras, "--min-visibility", "2", "--mot", "--sweeps",
            "--workers", str(s.workers), "--overwrite"])

    def pretrain(self) -> None:
        self.run("pre-train a small YOLOX with an 80-class head (stands in for COCO weights)", [
            "tools/train.py", "-f", "exps/demo_pretrain.py", *self.train_flags(), "--overwrite",
            *self.settings.pretrain_overrides])

    def finetune(self) -> None:
        ckpt = self.out / "runs" / "demo_pretrain" / LATEST_CKPT
        self.run("fine-tune it on the 7 classes with progressive unfreezing (val mAP and tracking every epoch)", [
            "tools/train.py", "-f", "exps/demo.py", *self.train_flags(), "--overwrite", "-c", str(ckpt),
            *self.settings.finetune_overrides])

    def track_keyframes(self) -> None:
        self.run("track the test split on keyframes only (2 Hz) with ByteTrack and BoT-SORT and evaluate", [
            "tools/track_eval.py", "-f", "exps/demo.py", "--ckpt", "best", "--split", "test", "--tracker", "all",
            "--frames", "keyframes", "--device", self.settings.device, "--out", str(self.tracking / KEYFRAMES_DIR)])

    def track_all_frames(self) -> None:
        self.run("track the test split on every camera frame, score the keyframes (+ gap interpolation)", [
            "tools/track_eval.py", "-f", "exps/demo.py", "--ckpt", "best", "--split", "test", "--tracker", "all",
            "--frames", "all", "--interpolate", str(self.settings.interpolate), "--device", self.settings.device,
            "--out", str(self.tracking / ALL_FRAMES_DIR)])

    def sweep(self) -> None:
        early = self.settings.compare_epoch
        self.run(f"confidence sweep on every frame: epoch {early} vs best_ckpt, both trackers", [
            "tools/conf_sweep.py", "-f", "exps/demo.py", "--ckpt", f"epoch_{early}", "best",
            "--tracker", "bytetrack", "botsort", "--conf", self.settings.sweep, "--conf-mode", "tracker",
            "--split", "test", "--frames", "all", "--device", self.settings.device,
            "--jobs", str(self.settings.workers)])

    def visualize(self) -> None:
        sequence = sorted(p for p in (self.out / "coco" / "mot_sweeps" / "test").iterdir() if p.is_dir())[0]
        results = self.tracking / ALL_FRAMES_DIR / "bytetrack" / f"{sequence.name}.txt"
        last = self.settings.video_frames
        self.run(f"draw ByteTrack's tracks on test sequence {sequence.name}: a video beside the ground truth", [
            "tools/visualize.py", "--seq", str(sequence), "--results", str(results), "--gt", "--frames", f"1:{last}",
            "--scale", "0.5", "--out", str(self.tracking / "tracks.mp4"), "--overwrite"])
        self.run("and a strip of 8 of those frames", [
            "tools/visualize.py", "--seq", str(sequence), "--results", str(results), "--frames", f"1:{last}",
            "--columns", "4", "--scale", "0.5", "--out", str(self.tracking / "tracks.png"), "--overwrite"])

    def analyze(self) -> None:
        self.run("analyse the training runs and write the report (with the tracks)", [
            "tools/analyze_runs.py", str(self.out / "runs" / "demo_pretrain"), str(self.out / "runs" / "demo"),
            "--out", str(self.out / "report"), "--media", str(self.tracking / "tracks.png"),
            str(self.tracking / "tracks.mp4")])

    # ------------------------------------------------------------------ results
    def headline(self) -> dict[str, Any]:
        run = self.out / "runs" / "demo"
        records = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines() if line.strip()]
        epochs = [r for r in records if r.get("type") == "epoch"]
        scored = [e for e in epochs if e.get("ap50") is not None]
        best = max(scored, key=lambda e: e["ap50_95"]) if scored else {}
        chosen = next((e for e in reversed(epochs) if e.get("best_epoch") is not None), {})
        tracking = {}
        for mode, folder in (("all_frames", ALL_FRAMES_DIR), ("keyframes", KEYFRAMES_DIR)):
            metrics = json.loads((self.tracking / folder / "metrics.json").read_text())
            tracking[mode] = {name: {k: t["overall"].get(k) for k in HEADLINE_METRICS}
                              for name, t in metrics["trackers"].items()}
        return {
            "val_ap50": best.get("ap50"), "val_ap50_95": best.get("ap50_95"), "best_epoch": best.get("epoch"),
            "tracking_test": tracking, "device": self.settings.device, "fp16": self.settings.fp16,
            "best_ckpt": {"epoch": chosen.get("best_epoch"), "metric": chosen.get("best_metric"),
                          "value": chosen.get("best_value")},
            "report": str(self.out / "report" / "report.html"),
            "sweep": str(run / "tracking" / "sweep" / "sweep.md"),
            "tracks_video": str(self.tracking / "tracks.mp4"),
            "tracks_strip": str(self.tracking / "tracks.png"),
            "timings_s": {k: round(v, 1) for k, v in self.timings.items()},
            "commands": self.commands,
        }


def run_demo(out: Path, settings: DemoSettings | None = None) -> dict[str, Any]:
    """Run every step; returns the headline numbers (also written to ``out/demo_summary.json``)."""
    settings = settings or DemoSettings()
    out = claim_output_dir(out, TOOL)  # refuses a folder holding anything the demo did not write, before any step
    write_marker(out, TOOL, DEMO_ENTRIES)
    pipeline = Pipeline(out, settings)
    start = time.time()
    for step in (pipeline.generate, pipeline.convert, pipeline.pretrain, pipeline.finetune, pipeline.track_keyframes,
                 pipeline.track_all_frames, pipeline.sweep, pipeline.visualize, pipeline.analyze):
        step()
    summary = pipeline.headline()
    summary["total_s"] = round(time.time() - start, 1)
    atomic_write_json(out / "demo_summary.json", summary)
    return summary


def format_headline(summary: dict[str, Any]) -> str:
    def pct(value):
        return format_number(value, ".1%")

    lines = ["", "=== step times"]
    lines += [f"{seconds:7.1f} s  {step}" for step, seconds in summary["timings_s"].items()]
    lines += [
        "",
        "=== demo finished in {:.0f} s".format(summary["total_s"]),
        f"detector (val split, best-mAP epoch {summary['best_epoch']}): mAP@0.5 {pct(summary['val_ap50'])}, "
        f"mAP@[.5:.95] {pct(summary['val_ap50_95'])}",
    ]
    chosen = summary.get("best_ckpt") or {}
    if chosen.get("epoch") is not None:
        lines.append(f"best_ckpt.pth: epoch {chosen['epoch']}, chosen by {chosen['metric']} on the val sequences "
                     f"({format_number(chosen.get('value'), '.1f')}); the tracking below uses it")
    lines.append("tracking on the test split (default conf), scored on the annotated keyframes:")
    labels = {"all_frames": "every camera frame", "keyframes": "keyframes only"}
    for mode in ("all_frames", "keyframes"):
        for name, m in summary["tracking_test"][mode].items():
            def fmt(key, m=m):
                return format_number(m.get(key), ".1f")
            lines.append(f"  {name:<16} {labels[mode]:<18} MOTA {fmt('MOTA'):>5}  IDF1 {fmt('IDF1'):>5}  "
                         f"HOTA {fmt('HOTA'):>5}  IDSW {fmt('IDSW'):>4}  FP {fmt('FP'):>5}  FN {fmt('FN'):>5}")
    lines += [f"report: {summary['report']}", f"confidence sweep: {summary['sweep']}",
              f"tracks: {summary['tracks_video']} and {summary['tracks_strip']}"]
    return "\n".join(lines)
