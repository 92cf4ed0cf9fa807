"""Scene-level train / val / test assignment.

Official releases: nuScenes' train scenes are divided into our train and val (seeded), nuScenes' val scenes become
our test split, which is never trained on. Releases whose scenes are not all in the official lists (v1.0-mini by
the issue's rule, synthetic and custom sets) split every scene with the same seeded rule, test first.
Splitting by scene keeps consecutive frames of one drive out of two splits.
"""

from __future__ import annotations

import random
from functools import lru_cache

from yolox_finetune.core.errors import UserError

SPLITS: tuple[str, ...] = ("train", "val", "test")


@lru_cache(maxsize=1)
def _official_scenes() -> tuple[frozenset[str], frozenset[str]]:
    """nuScenes' official (train, val) scene names, read once.

    Imported here, not at module level: ``nuscenes.utils.splits`` loads the whole devkit (and sklearn, matplotlib),
    seconds that every importer of this module (``tools/convert_nuscenes.py --help`` among them) would pay.
    """
    from nuscenes.utils.splits import create_splits_scenes

    official = create_splits_scenes(verbose=False)
    return frozenset(official["train"]), frozenset(official["val"])


def _take(names: list[str], ratio: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """Seeded pick of round(ratio * n) names (at least one when ratio > 0 and two or more names): (picked, rest)."""
    ordered = sorted(names)
    rng.shuffle(ordered)
    count = round(ratio * len(ordered))
    if ratio > 0 and len(ordered) >= 2:
        count = min(max(count, 1), len(ordered) - 1)
    picked = set(ordered[:count])
    return sorted(picked), sorted(n for n in names if n not in picked)


def split_policy(scene_names: list[str], version: str) -> str:
    """``"official"`` when every scene is an official train/val scene (and not a mini release), else ``"seeded"``."""
    official_train, official_val = _official_scenes()
    known = official_train | official_val
    if "mini" not in version and scene_names and all(name in known for name in scene_names):
        return "official"
    return "seeded"


def assign_splits(scene_names: list[str], version: str, val_ratio: float = 0.2, test_ratio: float = 0.2,
                  seed: int = 42, policy: str = "auto") -> dict[str, str]:
    """Map each scene name to ``train``, ``val`` or ``test``; the same inputs always give the same answer.

    ``test_ratio`` only applies to the seeded policy (official releases take nuScenes' val scenes as test).
    """
    for label, ratio in (("--val-ratio", val_ratio), ("--test-ratio", test_ratio)):
        if not 0.0 <= ratio < 1.0:
            raise UserError(f"{label} {ratio} is outside [0, 1); pass a fraction such as 0.2")
    if policy == "auto":
        policy = split_policy(scene_names, version)
    if policy not in ("official", "seeded"):
        raise UserError(f"unknown split policy {policy!r}; use auto, official or seeded")
    rng = random.Random(seed)
    if policy == "official":
        official_val = _official_scenes()[1]
        test = [n for n in scene_names if n in official_val]
        trainable = [n for n in scene_names if n not in official_val]
    else:
        test, trainable = _take(scene_names, test_ratio, rng)
    val, train = _take(trainable, val_ratio, rng)
    assignment = {name: "train" for name in train}
    assignment.update({name: "val" for name in val})
    assignment.update({name: "test" for name in test})
    return assignment
