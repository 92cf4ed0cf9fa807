"""Scene-level train / val / test assignment.

Two policies, both by scene (consecutive frames of one drive never land in two splits):

- ``official``: nuScenes' own scene lists, as the devkit and mmdetection3d use them. The official training scenes
  (``train`` of v1.0-trainval, ``mini_train`` of v1.0-mini) become our train, minus a held-out val share; the
  official validation scenes (``val``, ``mini_val``) and the official ``test`` scenes become our test split, which
  is never trained on.
- ``hash``: for releases without official lists (synthetic, custom). A keyed hash of each scene's name (key: the
  seed) decides its split, so a scene keeps its split when other scenes are added or removed.

The val hold-out of the official policy uses the same keyed hash. Only in tiny releases, where a split with a
positive ratio would otherwise be empty, is the scene whose hash lies closest to that split moved into it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from yolox_finetune.core.errors import UserError

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: values of ``--split-policy``; ``auto`` is official where the devkit lists the release's scenes, hash otherwise.
SPLIT_POLICIES: tuple[str, ...] = ("auto", "official", "hash")


@lru_cache(maxsize=1)
def official_scene_lists() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Release version -> (official training scenes, official held-out scenes), read once from the devkit.

    Imported here, not at module level: ``nuscenes.utils.splits`` loads the whole devkit (and sklearn, matplotlib),
    seconds that every importer of this module (``tools/convert_nuscenes.py --help`` among them) would pay.
    """
    from nuscenes.utils.splits import create_splits_scenes

    lists = create_splits_scenes(verbose=False)
    return {
        "v1.0-trainval": (frozenset(lists["train"]), frozenset(lists["val"])),
        "v1.0-mini": (frozenset(lists["mini_train"]), frozenset(lists["mini_val"])),
        "v1.0-test": (frozenset(), frozenset(lists["test"])),
    }


def _lists_for(version: str) -> tuple[frozenset[str], frozenset[str]]:
    """The official lists of ``version``; other versions (a renamed folder) get trainval's plus the test scenes."""
    lists = official_scene_lists()
    if version in lists:
        return lists[version]
    return lists["v1.0-trainval"][0], lists["v1.0-trainval"][1] | lists["v1.0-test"][1]


def scene_hash(name: str, seed: int, purpose: str) -> float:
    """A number in [0, 1) that depends only on the scene name, the seed and the purpose ("test" or "val")."""
    digest = hashlib.blake2b(f"{purpose}:{name}".encode(), key=str(seed).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def resolve_split_policy(policy: str, scene_names: list[str], version: str) -> str:
    """``official`` or ``hash`` for ``policy`` (auto, official, hash); UserError when official cannot apply."""
    if policy not in SPLIT_POLICIES:
        raise UserError(f"unknown split policy {policy!r}; use {', '.join(SPLIT_POLICIES)}")
    if policy == "hash":
        return policy
    has_lists = version in official_scene_lists()
    trainable, held_out = _lists_for(version)
    unknown = sorted(n for n in scene_names if n not in trainable | held_out)
    if policy == "auto":
        return "official" if has_lists and not unknown else "hash"
    if unknown:
        raise UserError(f"--split-policy official: {len(unknown)} scene(s) of {version} are not in nuScenes' "
                        f"official lists for it (e.g. {', '.join(unknown[:3])}); use --split-policy hash")
    return policy


def _hash_pick(names: list[str], ratio: float, seed: int, purpose: str) -> tuple[list[str], list[str]]:
    """(picked, rest): a name is picked when its hash is below ``ratio``. The rest is never left empty, and with
    two or more names and a positive ratio neither are the picked (the name with the nearest hash moves)."""
    u = {n: scene_hash(n, seed, purpose) for n in names}
    picked = [n for n in names if u[n] < ratio]
    if picked and len(picked) == len(names):
        picked.remove(max(picked, key=lambda n: (u[n], n)))
    if ratio > 0 and len(names) >= 2 and not picked:
        picked = [min(names, key=lambda n: (u[n], n))]
    chosen = set(picked)
    return sorted(chosen), sorted(n for n in names if n not in chosen)


def assign_splits(scene_names: list[str], version: str, val_ratio: float = 0.2, test_ratio: float = 0.2,
                  seed: int = 42, policy: str = "auto") -> dict[str, str]:
    """Map each scene name to ``train``, ``val`` or ``test``; the same inputs always give the same answer.

    ``test_ratio`` only applies to the hash policy (the official one takes nuScenes' held-out scenes as test);
    ``val_ratio`` is the share of the training scenes held out as val under both.
    """
    for label, ratio in (("--val-ratio", val_ratio), ("--test-ratio", test_ratio)):
        if not 0.0 <= ratio < 1.0:
            raise UserError(f"{label} {ratio} is outside [0, 1); pass a fraction such as 0.2")
    names = sorted(set(scene_names))
    policy = resolve_split_policy(policy, names, version)
    if policy == "official":
        held_out = _lists_for(version)[1]
        test = [n for n in names if n in held_out]
        trainable = [n for n in names if n not in held_out]
    else:
        test, trainable = _hash_pick(names, test_ratio, seed, "test")
    val, train = _hash_pick(trainable, val_ratio, seed, "val")
    assignment = {name: "train" for name in train}
    assignment.update({name: "val" for name in val})
    assignment.update({name: "test" for name in test})
    return assignment
