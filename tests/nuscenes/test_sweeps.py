"""All-frames MOT sequences (``--mot --sweeps``): frame order and rate from the devkit, ground truth on keyframes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from nuscenes.nuscenes import NuScenes

from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.formats import frame_images, read_annotated_frames, read_gt, read_seqinfo
from yolox_finetune.nuscenes.convert import convert_nuscenes
from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION as VERSION


@pytest.fixture(scope="module")
def converted(synthetic_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps") / "out"
    summary = convert_nuscenes(synthetic_root, VERSION, out, cameras=["CAM_FRONT", "CAM_BACK"], mot=True,
                               sweeps=True, seed=5, progress=False)
    return out, summary


def _devkit_camera_frames(nusc: NuScenes, scene_name: str, channel: str) -> list[dict]:
    """The camera's frames of a scene in the order the devkit's prev/next chain gives them."""
    scene = next(s for s in nusc.scene if s["name"] == scene_name)
    record = nusc.get("sample_data", nusc.get("sample", scene["first_sample_token"])["data"][channel])
    while record["prev"]:
        record = nusc.get("sample_data", record["prev"])
    frames = [record]
    while record["next"]:
        record = nusc.get("sample_data", record["next"])
        frames.append(record)
    return frames


def _sequences(out: Path) -> list[tuple[str, Path]]:
    return [(split.name, seq) for split in sorted((out / "mot_sweeps").iterdir()) for seq in sorted(split.iterdir())]


def test_sequences_hold_every_camera_frame_in_time_order_at_the_camera_rate(converted, synthetic_root):
    out, summary = converted
    nusc = NuScenes(VERSION, dataroot=str(synthetic_root), verbose=False)
    sequences = _sequences(out)
    assert len(sequences) == summary["mot_sweep_sequences"] == summary["mot_sequences"] > 0
    for split, seq in sequences:
        scene, channel = seq.name.split("_", 1)
        expected = _devkit_camera_frames(nusc, scene, channel)
        images = frame_images(seq)
        assert len(images) == len(expected) > len(frame_images(out / "mot" / split / seq.name))
        targets = [os.readlink(path) for path in images.values()]
        assert targets == [str(synthetic_root / record["filename"]) for record in expected]
        # the synthetic release has one sweep between keyframes: twice the 2 Hz keyframe rate, and no gaps
        info = read_seqinfo(seq)
        assert info.frame_rate == 4
        assert list(images) == list(range(1, len(expected) + 1))
        assert info.seq_length == len(expected)


def test_ground_truth_is_on_the_keyframes_only_and_equals_the_keyframe_sequence(converted, synthetic_root):
    out, _ = converted
    nusc = NuScenes(VERSION, dataroot=str(synthetic_root), verbose=False)
    for split, seq in _sequences(out):
        annotated = read_annotated_frames(seq)
        images = frame_images(seq)
        keyframe_numbers = [frame for frame, path in images.items()
                            if nusc.get("sample_data", _token_of(nusc, path))["is_key_frame"]]
        assert annotated == keyframe_numbers and 0 < len(annotated) < len(images)
        gt = read_gt(seq / "gt" / "gt.txt")
        assert set(np.unique(gt.frame)) <= set(annotated)
        # same boxes, ids and classes as the keyframe-only sequence, frame k of it being the k-th keyframe here
        keyframe_gt = read_gt(out / "mot" / split / seq.name / "gt" / "gt.txt")
        keyframe_frames = sorted(frame_images(out / "mot" / split / seq.name))
        number_here = dict(zip(keyframe_frames, annotated))
        assert np.array_equal(np.vectorize(number_here.get)(keyframe_gt.frame), gt.frame)
        assert np.array_equal(keyframe_gt.track_id, gt.track_id) and np.allclose(keyframe_gt.box, gt.box)
        assert np.array_equal(keyframe_gt.class_id, gt.class_id)


def _token_of(nusc: NuScenes, image: Path) -> str:
    target = os.readlink(image)
    name = os.path.relpath(target, nusc.dataroot)
    return next(r["token"] for r in nusc.sample_data if r["filename"] == name)


def test_sweeps_need_mot_and_their_images(synthetic_root, tmp_path, derive_release):
    with pytest.raises(UserError, match="add --mot"):
        convert_nuscenes(synthetic_root, VERSION, tmp_path / "o", sweeps=True, progress=False)
    partial = derive_release(synthetic_root, tmp_path / "partial", VERSION, copy_images=True)
    removed = sorted((partial / "sweeps" / "CAM_FRONT").iterdir())[:2]
    for path in removed:
        path.unlink()
    with pytest.raises(UserError, match="2 of .* sweep images .* missing"):
        convert_nuscenes(partial, VERSION, tmp_path / "o", cameras=["CAM_FRONT"], mot=True, sweeps=True,
                         progress=False)
    assert not (tmp_path / "o").exists()
    summary = convert_nuscenes(partial, VERSION, tmp_path / "o", cameras=["CAM_FRONT"], mot=True, sweeps=True,
                               allow_missing=True, progress=False)
    assert summary["missing_sweep_images"] == 2
    linked = {os.path.basename(os.readlink(p)) for _, seq in _sequences(tmp_path / "o")
              for p in frame_images(seq).values()}
    assert not linked & {p.name for p in removed}
