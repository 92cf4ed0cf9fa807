"""Write the built-in synthetic nuScenes dataset (v1.0 schema, six cameras, JPEGs) for demos and tests.

    python tools/make_synthetic_nuscenes.py --out data/nuscenes_synthetic
    python tools/convert_nuscenes.py --dataroot data/nuscenes_synthetic --version v1.0-synthetic --out data/synth_coco
"""

from __future__ import annotations

import argparse
import json

from yolox_finetune.core.errors import UserError, cli_entry


def image_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--image-size {text!r} is not WIDTHxHEIGHT; pass e.g. 800x450") from None
    return width, height


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="dataroot to create (tables go to OUT/v1.0-synthetic)")
    parser.add_argument("--scenes", type=int, default=6, help="number of scenes")
    parser.add_argument("--samples", type=int, default=16, help="keyframes per scene (2 Hz)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same dataset")
    parser.add_argument("--image-size", default=None,  # None: the generator's DEFAULT_IMAGE_SIZE (set in main)
                        help="camera image size WIDTHxHEIGHT (intrinsics scale with it; nuScenes is 1600x900)")
    parser.add_argument("--sweeps", type=int, default=2, help="camera sweeps between consecutive keyframes")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes rendering scenes in parallel (one per core; the output does not change)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    return parser.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    size = image_size(args.image_size) if args.image_size is not None else None
    # Imported after parsing: the generator pulls in cv2 and tqdm, which --help does not need.
    from yolox_finetune.nuscenes.synthetic.generate import DEFAULT_IMAGE_SIZE, make_synthetic_nuscenes

    summary = make_synthetic_nuscenes(args.out, scenes=args.scenes, samples=args.samples, seed=args.seed,
                                      image_size=size or DEFAULT_IMAGE_SIZE, sweeps=args.sweeps, workers=args.workers,
                                      overwrite=args.overwrite)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
