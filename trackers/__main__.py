"""Print tracker configs with every default as YAML: a starting file for ``--tracker-config``.

    python -m trackers bytetrack > my_tracker.yaml     # one tracker
    python -m trackers > trackers.yaml                 # every tracker, one entry each
    python -m trackers botsort --reference > ref.yaml  # the reference code's update rules (docs/trackers.md)
"""

from __future__ import annotations

import sys

from trackers.config import TRACKER_CONFIGS, TrackerConfig, config_yaml, tracker_config_class
from trackers.errors import TrackerError


def main(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__.strip())
        return 0
    reference = "--reference" in argv
    names = [arg for arg in argv if arg != "--reference"]
    try:
        classes = [tracker_config_class(name) for name in names]
    except TrackerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    def build(config_class: type[TrackerConfig]) -> TrackerConfig:
        return config_class.reference() if reference else config_class()

    if len(classes) == 1:
        sys.stdout.write(config_yaml(build(classes[0])))
    else:
        chosen = classes or list(TRACKER_CONFIGS.values())
        sys.stdout.write(config_yaml({c.tracker_name: build(c) for c in chosen}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
