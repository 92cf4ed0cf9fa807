"""yolox-finetune: fine-tune YOLOX on nuScenes and judge detectors by tracking quality."""

__version__ = "0.1.0"
