"""The module groups of a YOLOX model and the phases that unfreeze them, named the same in exps, plans, logs and
reports.

Kept free of torch/yolox imports so that reading logs (the analysis) does not pay for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: CSPDarknet stages (``model.backbone.backbone.*``), the PAFPN neck (the rest of ``model.backbone``), the head.
GROUPS: tuple[str, ...] = ("stem", "dark2", "dark3", "dark4", "dark5", "pafpn", "head")


@dataclass(frozen=True)
class Phase:
    """From ``start_epoch`` (1-based) on, train the groups named in ``lr_mult`` at base LR x multiplier.

    Without ``lr_per_img`` and ``warmup_epochs`` the base LR is the exp's one warmup-cosine curve over the whole run
    (so a phase's multipliers scale an already decayed LR). Setting either gives the phase its own curve, as
    progressive fine-tuning wants each stage to learn: warmup from ``exp.warmup_lr`` over ``warmup_epochs``, then a
    cosine over the phase's remaining epochs down to ``exp.min_lr_ratio`` x its base, which the exp's no-aug tail
    keeps. ``lr_per_img`` None means the exp's ``basic_lr_per_img``. ``bn_policy`` None means the exp's
    ``bn_policy``.
    """

    start_epoch: int
    lr_mult: dict[str, float] = field(default_factory=lambda: {"head": 1.0})
    lr_per_img: float | None = None
    warmup_epochs: float | None = None
    bn_policy: str | None = None

    @property
    def trainable(self) -> list[str]:
        return [g for g in GROUPS if g in self.lr_mult]

    @property
    def has_own_lr(self) -> bool:
        """True when this phase runs its own warmup-cosine instead of the exp's global curve."""
        return self.lr_per_img is not None or self.warmup_epochs is not None


def head_only() -> tuple[Phase, ...]:
    return (Phase(1, {"head": 1.0}),)
