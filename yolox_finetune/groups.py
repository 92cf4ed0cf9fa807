"""The module groups of a YOLOX model, named the same in exps, plans, logs and reports.

Kept free of torch/yolox imports so that reading logs (the analysis) does not pay for them.
"""

#: CSPDarknet stages (``model.backbone.backbone.*``), the PAFPN neck (the rest of ``model.backbone``), the head.
GROUPS: tuple[str, ...] = ("stem", "dark2", "dark3", "dark4", "dark5", "pafpn", "head")
