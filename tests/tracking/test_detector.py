"""The detector cache with a real (tiny, untrained) YOLOX: run once per checkpoint, reused across thresholds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.formats import SeqInfo, frame_images, read_detections, write_gt, write_seqinfo
from yolox_finetune.mot.synthetic import make_scene
from yolox_finetune.tracking import detector as detect
from yolox_finetune.tracking.flows import checkpoint_detections
from yolox_finetune.training.exp import load_exp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import conf_sweep  # noqa: E402
import track_eval  # noqa: E402

EXP_TEXT = '''
from yolox_finetune.training.exp import NuScenesExp


class Exp(NuScenesExp):
    def __init__(self):
        super().__init__()
        self.depth, self.width = 0.33, 0.125
        self.input_size = self.test_size = (128, 128)
        self.test_conf = 1e-5  # an untrained head scores ~1e-4: keep its boxes so the files are not empty
        self.output_dir = {out!r}
        self.exp_name = "tiny"
        self.data_dir = {data!r}
'''


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect")
    exp_file = root / "tiny_exp.py"
    exp_file.write_text(EXP_TEXT.format(out=str(root / "runs"), data=str(root / "data")))
    exp = load_exp(exp_file)
    torch.manual_seed(0)
    exp.run_dir.mkdir(parents=True)
    torch.save({"model": exp.get_model().state_dict(), "start_epoch": 1}, exp.run_dir / "epoch_1.pth")
    rng = np.random.default_rng(0)
    for i in range(2):
        seq = root / "data" / "mot" / "val" / f"scene-{i}_CAM_FRONT"
        scene = make_scene(rng, num_frames=3, num_objects=2, image_size=(90, 160))
        write_gt(seq / "gt" / "gt.txt", scene.gt)
        write_seqinfo(seq, SeqInfo(name=seq.name, frame_rate=12, seq_length=3, im_width=160, im_height=90))
        (seq / "img1").mkdir()
        for f in range(1, 4):
            cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), rng.integers(0, 255, (90, 160, 3), dtype=np.uint8))
    return root, exp_file, exp


def test_detections_are_in_frame_pixels_and_independent_of_batching(workspace):
    root, _, exp = workspace
    detector = detect.Detector(exp, exp.run_dir / "epoch_1.pth", device="cpu")
    images = frame_images(root / "data" / "mot" / "val" / "scene-0_CAM_FRONT")
    one = detect.detect_sequence(detector, images, batch_size=1)
    three = detect.detect_sequence(detector, images, batch_size=3)
    assert len(one) > 0 and one.frame.tolist() == three.frame.tolist()
    for frame in (1, 2, 3):  # near-equal untrained scores may come out in another order: compare sorted rows
        a, b = (np.column_stack([r.box, r.score])[r.frame == frame] for r in (one, three))  # class argmax ties
        a, b = (m[np.lexsort(np.round(m, 1).T[::-1])] for m in (a, b))
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert set(one.frame.tolist()) <= {1, 2, 3} and one.class_id.min() >= 1 and one.class_id.max() <= 7
    right, bottom = one.box[:, 0] + one.box[:, 2], one.box[:, 1] + one.box[:, 3]
    assert one.box[:, :2].min() >= 0 and right.max() <= 160 + 1e-6 and bottom.max() <= 90 + 1e-6
    assert right.max() > 128 * 0.9  # scaled back from the 128 px network input to the 160 px frame
    assert (one.score >= 1e-5).all() and (one.score <= 1).all()


@pytest.fixture()
def forward_passes(monkeypatch) -> list[int]:
    """Counts the detector's real forward passes (one entry per batch) by wrapping ``Detector.__call__``."""
    calls: list[int] = []
    real_call = detect.Detector.__call__

    def counting_call(self, images):
        calls.append(len(images))
        return real_call(self, images)

    monkeypatch.setattr(detect.Detector, "__call__", counting_call)
    return calls


def test_cache_is_built_once_and_reused_across_thresholds(workspace, tmp_path, forward_passes):
    root, exp_file, exp = workspace
    ckpt = exp.run_dir / "epoch_1.pth"
    data = root / "data" / "mot" / "val"
    folder = detect.cached_detections(exp, ckpt, data, tmp_path / "cache", device="cpu", batch_size=2)
    assert forward_passes == [2, 1, 2, 1]  # 2 sequences x 3 frames in batches of <= 2 frames
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["checkpoint_sha256"] == detect.file_sha256(ckpt)
    assert manifest["test_size"] == [128, 128] and manifest["min_conf"] == 1e-5
    assert set(manifest["sequences"]) == {"scene-0_CAM_FRONT", "scene-1_CAM_FRONT"}
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert detect.cached_detections(exp, ckpt, data, tmp_path / "cache", device="cpu") == folder
    assert len(forward_passes) == 4
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes
    # other NMS or other weights: another cache folder, detected again
    exp.nmsthre = 0.5
    assert detect.cached_detections(exp, ckpt, data, tmp_path / "cache", device="cpu") != folder
    exp.nmsthre = 0.45


def test_ckpt_mode_tracks_from_the_cache_at_every_threshold(workspace, forward_passes):
    root, exp_file, exp = workspace
    track_eval.main(["--ckpt", "epoch_1", "-f", str(exp_file), "--device", "cpu", "--tracker", "bytetrack",
                     "--conf", "0.00001"])
    out = exp.run_dir / "tracking" / "epoch_1"
    document = json.loads((out / "metrics.json").read_text())
    assert set(document["trackers"]["bytetrack"]["per_sequence"]) == {"scene-0_CAM_FRONT", "scene-1_CAM_FRONT"}
    cache = next((exp.run_dir / "tracking" / "det_cache").iterdir())
    assert len(read_detections(cache / "scene-0_CAM_FRONT.txt")) > 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    calls = len(forward_passes)
    for conf in ("0.0001", "0.5"):
        track_eval.main(["--ckpt", "epoch_1", "-f", str(exp_file), "--tracker", "all", "--conf", conf,
                         "--out", str(root / f"o{conf}")])
    conf_sweep.main(["--ckpt", "epoch_1", "-f", str(exp_file), "--conf", "0.0001,0.001", "--jobs", "1",
                     "--tracker", "bytetrack"])
    assert len(forward_passes) == calls
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == mtimes
    assert (exp.run_dir / "tracking" / "sweep" / "sweep.csv").is_file()
    # BoT-SORT had frames, so it ran with its camera-motion compensation on
    settings = json.loads((root / "o0.5" / "metrics.json").read_text())["settings"]
    assert settings["trackers"]["botsort"]["cmc"] == "sparseOptFlow"


def test_unknown_checkpoint_name_lists_the_existing_ones(workspace):
    _, exp_file, _ = workspace
    with pytest.raises(UserError, match="epoch_1"):
        checkpoint_detections(str(exp_file), "epoch_99", None, "val", "cpu")
    with pytest.raises(SystemExit) as info:
        track_eval.main(["--ckpt", "best", "-f", str(exp_file)])
    assert info.value.code == 2
