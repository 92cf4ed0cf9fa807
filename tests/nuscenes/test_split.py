"""Scene splits: nuScenes' official lists (trainval, mini, test) and the keyed hash for every other release."""

from __future__ import annotations

from collections import Counter

import pytest
from nuscenes.utils.splits import create_splits_scenes

from yolox_finetune.core.errors import UserError
from yolox_finetune.nuscenes.split import assign_splits, resolve_split_policy, scene_hash
from yolox_finetune.nuscenes.synthetic.generate import SYNTHETIC_VERSION as VERSION

OFFICIAL = create_splits_scenes(verbose=False)


def _names(start: int, count: int) -> list[str]:
    return [f"synth-{i:04d}" for i in range(start, start + count)]


def test_hash_split_keeps_every_scene_where_it_was_when_scenes_are_added_or_removed():
    before = assign_splits(_names(0, 400), VERSION, seed=3)
    grown = assign_splits(_names(0, 400) + _names(1000, 150), VERSION, seed=3)
    shrunk = assign_splits(_names(50, 300), VERSION, seed=3)
    assert {n: grown[n] for n in before} == before
    assert shrunk == {n: before[n] for n in shrunk}
    assert assign_splits(list(reversed(_names(0, 400))), VERSION, seed=3) == before
    assert assign_splits(_names(0, 400), VERSION, seed=4) != before  # the seed is the hash key


def test_hash_split_follows_the_ratios():
    counts = Counter(assign_splits(_names(0, 4000), VERSION, val_ratio=0.25, test_ratio=0.1, seed=0).values())
    assert counts["test"] / 4000 == pytest.approx(0.1, abs=0.02)
    assert counts["val"] / (4000 - counts["test"]) == pytest.approx(0.25, abs=0.03)
    assert set(assign_splits(_names(0, 50), VERSION, val_ratio=0.0, test_ratio=0.0).values()) == {"train"}


@pytest.mark.parametrize("seed", range(6))
def test_tiny_releases_still_get_every_split(seed):
    """From three scenes on train, val and test are non-empty (the demo and the synthetic set rely on it)."""
    assert set(assign_splits(_names(0, 3), VERSION, seed=seed).values()) == {"train", "val", "test"}
    assert set(assign_splits(_names(0, 2), VERSION, seed=seed).values()) == {"train", "test"}


def test_scene_hash_is_a_fraction_that_depends_on_name_seed_and_purpose():
    values = {scene_hash(n, 0, "test") for n in _names(0, 100)}
    assert len(values) == 100 and all(0.0 <= v < 1.0 for v in values)
    assert scene_hash("scene-0001", 0, "test") != scene_hash("scene-0001", 1, "test")
    assert scene_hash("scene-0001", 0, "test") != scene_hash("scene-0001", 0, "val")


def test_trainval_official_train_gives_train_and_val_official_val_gives_test():
    names = OFFICIAL["train"] + OFFICIAL["val"]
    splits = assign_splits(names, "v1.0-trainval", val_ratio=0.2, seed=0)
    assert {n for n, s in splits.items() if s == "test"} == set(OFFICIAL["val"])
    val = {n for n, s in splits.items() if s == "val"}
    assert val < set(OFFICIAL["train"]) and len(val) / len(OFFICIAL["train"]) == pytest.approx(0.2, abs=0.04)
    # a partial download keeps every present scene where the full release puts it
    part = OFFICIAL["train"][::3] + OFFICIAL["val"][::3]
    assert assign_splits(part, "v1.0-trainval", seed=0) == {n: splits[n] for n in part}


def test_mini_uses_the_official_mini_lists():
    names = OFFICIAL["mini_train"] + OFFICIAL["mini_val"]
    splits = assign_splits(names, "v1.0-mini", seed=0)
    assert resolve_split_policy("auto", names, "v1.0-mini") == "official"
    assert {n for n, s in splits.items() if s == "test"} == set(OFFICIAL["mini_val"])
    assert {n for n, s in splits.items() if s in ("train", "val")} == set(OFFICIAL["mini_train"])
    assert Counter(splits.values())["val"] >= 1


def test_test_release_goes_to_test():
    splits = assign_splits(OFFICIAL["test"][:20], "v1.0-test", seed=0)
    assert set(splits.values()) == {"test"}


def test_auto_falls_back_to_hash_and_official_refuses_unknown_scenes():
    names = OFFICIAL["train"][:5] + ["my-own-scene"]
    assert resolve_split_policy("auto", names, "v1.0-trainval") == "hash"
    assert resolve_split_policy("auto", _names(0, 3), VERSION) == "hash"
    assert resolve_split_policy("hash", OFFICIAL["train"][:5], "v1.0-trainval") == "hash"
    with pytest.raises(UserError, match=r"1 scene\(s\) of v1.0-trainval are not in nuScenes' official .*my-own"):
        assign_splits(names, "v1.0-trainval", policy="official")
    with pytest.raises(UserError, match="unknown split policy 'seeded'"):
        assign_splits(names, "v1.0-trainval", policy="seeded")
    with pytest.raises(UserError, match="--val-ratio 1.5"):
        assign_splits(names, "v1.0-trainval", val_ratio=1.5)
