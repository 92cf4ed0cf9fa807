"""nuScenes support: the COCO / MOT converter and the built-in synthetic nuScenes dataset."""

from .convert import convert_nuscenes, summary_table
from .synthetic import DEFAULT_IMAGE_SIZE, SYNTHETIC_VERSION, make_synthetic_nuscenes

__all__ = ["convert_nuscenes", "summary_table", "make_synthetic_nuscenes", "SYNTHETIC_VERSION", "DEFAULT_IMAGE_SIZE"]
