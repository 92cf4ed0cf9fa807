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
    """From ``start_epoch`` (1-based) on, train the groups named in ``lr_mult`` at base LR x multiplier."""

    start_epoch: int
    lr_mult: dict[str, float] = field(default_factory=lambda: {"head": 1.0})

    @property
    def trainable(self) -> list[str]:
        return [g for g in GROUPS if g in self.lr_mult]


def head_only() -> tuple[Phase, ...]:
    return (Phase(1, {"head": 1.0}),)
