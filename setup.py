from setuptools import find_packages, setup

setup(
    name="yolox-finetune",
    version="0.1.0",
    description="Fine-tune YOLOX on nuScenes and judge detectors by tracking quality",
    packages=find_packages(include=["yolox_finetune", "yolox_finetune.*", "trackers", "trackers.*"]),
    python_requires=">=3.10",
)
