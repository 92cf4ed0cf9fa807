from pathlib import Path

from setuptools import find_packages, setup


def requirements(name: str) -> list[str]:
    """Requirement lines of ``name`` without comments (one list for pip -r and install_requires)."""
    lines = (line.split("#", 1)[0].strip() for line in (Path(__file__).parent / name).read_text().splitlines())
    return [line for line in lines if line]


setup(
    name="yolox-finetune",
    version="0.1.0",
    description="Fine-tune YOLOX on nuScenes and judge detectors by tracking quality",
    packages=find_packages(include=["yolox_finetune", "yolox_finetune.*", "trackers", "trackers.*"]),
    python_requires=">=3.10",
    install_requires=requirements("requirements.txt"),
    extras_require={"dev": requirements("requirements-dev.txt"), "bench": requirements("requirements-bench.txt")},
)
