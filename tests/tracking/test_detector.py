"""The detector cache with a real (tiny, untrained) YOLOX: run once per checkpoint, reused across thresholds, run
again when anything the detections depend on changed (frames, model fields, precision, NMS)."""

from __future__ import annotations

import json
import os
import shutil
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
    assert (one.box[:, 2:] > 0).all()  # no zero-area rows: boxes wholly in the letterbox padding are dropped


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
    assert (manifest["precision"], manifest["nms"]) == ("fp32", "class-aware")
    assert manifest["model"] == {"depth": 0.33, "width": 0.125, "act": "silu", "num_classes": 7}
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
    """An untrained head scores ~1e-4: thresholds this low only make sense as a pre-filter (--conf-mode filter)."""
    root, exp_file, exp = workspace
    track_eval.main(["--ckpt", "epoch_1", "-f", str(exp_file), "--device", "cpu", "--tracker", "bytetrack",
                     "--conf", "0.00001", "--conf-mode", "filter"])
    out = exp.run_dir / "tracking" / "epoch_1"
    document = json.loads((out / "metrics.json").read_text())
    assert set(document["trackers"]["bytetrack"]["per_sequence"]) == {"scene-0_CAM_FRONT", "scene-1_CAM_FRONT"}
    cache = next((exp.run_dir / "tracking" / "det_cache").iterdir())
    assert len(read_detections(cache / "scene-0_CAM_FRONT.txt")) > 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    calls = len(forward_passes)
    for conf in ("0.0001", "0.5"):
        track_eval.main(["--ckpt", "epoch_1", "-f", str(exp_file), "--tracker", "all", "--conf", conf,
                         "--conf-mode", "filter",
                         "--out", str(root / f"o{conf}")])
    conf_sweep.main(["--ckpt", "epoch_1", "-f", str(exp_file), "--conf", "0.0001,0.001", "--jobs", "1",
                     "--conf-mode", "filter",
                     "--tracker", "bytetrack"])
    assert len(forward_passes) == calls
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == mtimes
    assert (exp.run_dir / "tracking" / "sweep" / "sweep.csv").is_file()
    # BoT-SORT had frames, so it ran with its camera-motion compensation on
    settings = json.loads((root / "o0.5" / "metrics.json").read_text())["settings"]
    assert settings["trackers"]["botsort"]["cmc"] == "sparseOptFlow"
    # how the detector ran is part of the record: stock fp32 and class-aware NMS unless asked otherwise
    assert (settings["detector"]["precision"], settings["detector"]["nms"]) == ("fp32", "class-aware")
    assert "detector fp32, class-aware NMS" in (exp.run_dir / "tracking" / "sweep" / "sweep.md").read_text()
    track_eval.main(["--ckpt", "epoch_1", "-f", str(exp_file), "--tracker", "bytetrack", "--conf", "0.0001",
                     "--conf-mode", "filter", "--nms-class-agnostic", "--fp16", "--out", str(root / "agnostic")])
    settings = json.loads((root / "agnostic" / "metrics.json").read_text())["settings"]
    assert (settings["detector"]["precision"], settings["detector"]["nms"]) == ("fp32", "class-agnostic")  # CPU
    assert len(forward_passes) > calls and Path(settings["detections"]) != cache


def test_unknown_checkpoint_name_lists_the_existing_ones(workspace):
    _, exp_file, _ = workspace
    with pytest.raises(UserError, match="epoch_1"):
        checkpoint_detections(str(exp_file), "epoch_99", None, "val", "cpu")
    with pytest.raises(SystemExit) as info:
        track_eval.main(["--ckpt", "best", "-f", str(exp_file)])
    assert info.value.code == 2


def copy_sequences(workspace, tmp_path) -> Path:
    """A private copy of the two sequences, for tests that change frames."""
    root = workspace[0]
    return Path(shutil.copytree(root / "data" / "mot" / "val", tmp_path / "val"))


def frame_of(size: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)


def test_new_or_changed_frames_are_detected_again(workspace, tmp_path, forward_passes):
    _, _, exp = workspace
    ckpt, data, cache = exp.run_dir / "epoch_1.pth", copy_sequences(workspace, tmp_path), tmp_path / "cache"
    folder = detect.cached_detections(exp, ckpt, data, cache, device="cpu")
    assert forward_passes == [3, 3]
    other = folder / "scene-1_CAM_FRONT.txt"
    other_mtime = other.stat().st_mtime_ns
    # a frame added to one sequence: that sequence only is detected again, and the new frame has detections
    cv2.imwrite(str(data / "scene-0_CAM_FRONT" / "img1" / "000004.jpg"), frame_of((90, 160), 4))
    assert detect.cached_detections(exp, ckpt, data, cache, device="cpu") == folder
    assert forward_passes == [3, 3, 4]
    assert 4 in set(read_detections(folder / "scene-0_CAM_FRONT.txt").frame.tolist())
    assert other.stat().st_mtime_ns == other_mtime
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sequences"]["scene-0_CAM_FRONT"]["frames"] == 4
    # an image replaced under the same name (new content, new modification time)
    image = data / "scene-1_CAM_FRONT" / "img1" / "000002.jpg"
    cv2.imwrite(str(image), frame_of((90, 160), 5))
    os.utime(image, ns=(image.stat().st_atime_ns, other_mtime + 10**9))
    detect.cached_detections(exp, ckpt, data, cache, device="cpu")
    assert forward_passes == [3, 3, 4, 3]
    detect.cached_detections(exp, ckpt, data, cache, device="cpu")
    assert forward_passes == [3, 3, 4, 3]  # nothing changed since: nothing detected


def test_model_fields_precision_and_nms_key_the_cache(workspace, tmp_path, monkeypatch, forward_passes):
    root, _, exp = workspace
    ckpt, data = exp.run_dir / "epoch_1.pth", root / "data" / "mot" / "val"

    def folder(**settings) -> Path:
        return detect.cache_dir_for(tmp_path, detect.cache_identity(exp, ckpt, data, 0.01, **settings))

    base = folder()
    assert folder(precision="fp16") != base and folder(class_agnostic=True) != base
    for field, value in (("act", "relu"), ("depth", 0.67), ("width", 0.25), ("num_classes", 3),
                         ("test_size", (160, 160)), ("nmsthre", 0.6)):
        with monkeypatch.context() as patch:
            patch.setattr(exp, field, value)
            assert folder() != base, field
    # act has no weights of its own: the same checkpoint loads, and a new cache holds the new model's detections
    silu = detect.cached_detections(exp, ckpt, data, tmp_path / "cache", device="cpu")
    monkeypatch.setattr(exp, "act", "relu")
    relu = detect.cached_detections(exp, ckpt, data, tmp_path / "cache", device="cpu")
    assert relu != silu and len(forward_passes) == 4
    a, b = (read_detections(f / "scene-0_CAM_FRONT.txt") for f in (silu, relu))
    assert len(a) != len(b) or not np.array_equal(a.score, b.score)
    # --fp16 on a CPU runs fp32, so it is the fp32 cache
    monkeypatch.setattr(exp, "act", "silu")
    assert detect.cached_detections(exp, ckpt, data, tmp_path / "cache", device="cpu", fp16=True) == silu
    assert len(forward_passes) == 4


def test_frames_numbered_from_zero_are_refused(workspace, tmp_path):
    _, exp_file, exp = workspace
    data = copy_sequences(workspace, tmp_path / "mot")
    img1 = data / "scene-0_CAM_FRONT" / "img1"
    for f in (1, 2, 3):
        (img1 / f"{f:06d}.jpg").rename(img1 / f"{f - 1:06d}.jpg")
    with pytest.raises(UserError, match="numbered from 1") as info:
        detect.cached_detections(exp, exp.run_dir / "epoch_1.pth", data, tmp_path / "cache", device="cpu")
    assert "\n" not in str(info.value) and "000000.jpg" in str(info.value)
    with pytest.raises(SystemExit) as info:
        track_eval.main(["--ckpt", "epoch_1", "-f", str(exp_file), "--data", str(tmp_path / "mot"), "--device",
                         "cpu", "--tracker", "bytetrack", "--out", str(tmp_path / "out")])
    assert info.value.code == 2


def test_a_reconverted_sequence_of_symlinks_is_detected_again(workspace, tmp_path, forward_passes):
    """The converter links img1/ into nuScenes' samples/: converting again makes new links (perhaps to other
    images of the same size and time); such a sequence is detected again, never silently reused."""
    _, _, exp = workspace
    ckpt, data, cache = exp.run_dir / "epoch_1.pth", copy_sequences(workspace, tmp_path), tmp_path / "cache"
    samples = tmp_path / "samples"
    samples.mkdir()
    img1 = data / "scene-0_CAM_FRONT" / "img1"
    for image in sorted(img1.iterdir()):
        target = samples / image.name
        shutil.move(image, target)
        image.symlink_to(target)
    folder = detect.cached_detections(exp, ckpt, data, cache, device="cpu")
    assert forward_passes == [3, 3]
    detect.cached_detections(exp, ckpt, data, cache, device="cpu")
    assert forward_passes == [3, 3]  # nothing changed: reused
    # converted again: the same links made anew
    for link in sorted(img1.iterdir()):
        target = link.resolve()
        link.unlink()
        link.symlink_to(target)
    assert detect.cached_detections(exp, ckpt, data, cache, device="cpu") == folder
    assert forward_passes == [3, 3, 3]
    # a link pointed at another file with the same size and modification time, the link's own time kept
    first = samples / "000001.jpg"
    twin = shutil.copy2(first, samples / "twin.jpg")
    link = img1 / "000001.jpg"
    before = link.lstat().st_mtime_ns
    link.unlink()
    link.symlink_to(twin)
    os.utime(link, ns=(before, before), follow_symlinks=False)
    assert (link.stat().st_size, link.stat().st_mtime_ns) == (first.stat().st_size, first.stat().st_mtime_ns)
    detect.cached_detections(exp, ckpt, data, cache, device="cpu")
    assert forward_passes == [3, 3, 3, 3]
