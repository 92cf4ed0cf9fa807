"""Detections exactly as stock YOLOX 0.3.0 gives them, but for the one documented rule (README "Detections"):
boxes are clipped to the image and a box whose clipped area is zero is dropped.

The stock side runs YOLOX's own code on the same weights and images: ``ValTransform``, an fp32 forward pass,
``yolox.utils.postprocess`` and ``bboxes /= ratio`` (COCOEvaluator's class-aware path, and the real
``yolox.tools.demo.Predictor`` for the class-agnostic one), then ``COCOEvaluator.convert_to_coco_format`` for mAP.
The rule is applied to stock's output here, independently of the project's code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from yolox.data import COCODataset
from yolox.data.data_augment import ValTransform
from yolox.evaluators import COCOEvaluator
from yolox.tools.demo import Predictor
from yolox.utils import postprocess

from yolox_finetune.tracking.detector import Detector
from yolox_finetune.training.exp import load_exp
from yolox_finetune.training.validation import coco_detections, coco_map, evaluate

EXP_TEXT = '''
from yolox_finetune.training.exp import NuScenesExp


class Exp(NuScenesExp):
    def __init__(self):
        super().__init__()
        self.depth, self.width = 0.33, 0.125
        self.test_size = {test_size!r}
        self.test_conf = 1e-3
        self.output_dir = {out!r}
        self.exp_name = "parity"
'''

#: network input sizes (height, width) and frame shapes: 16:9, 4:3, portrait, square, very wide, very tall, odd.
TEST_SIZES = [(128, 128), (96, 160), (64, 256)]
SHAPES = [(90, 160), (120, 160), (160, 90), (100, 100), (40, 400), (300, 50), (37, 301)]


def lively_model(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights that give an untrained model varied scores, box sizes and classes, so NMS, the score order
    and the clip rule all have work to do: He-normal convolutions (YOLOX's own init fades to ~1e-9 by the last
    level: one score, one box size, one class everywhere), prediction layers scaled to a set spread."""
    generator = torch.Generator().manual_seed(seed)
    head = model.head
    preds = {id(conv) for conv in (*head.reg_preds, *head.obj_preds, *head.cls_preds)}
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and id(module) not in preds:
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
        features: dict[int, torch.Tensor] = {}
        hooks = [conv.register_forward_hook(lambda _m, _i, out, k=k: features.__setitem__(k, out))
                 for k, conv in enumerate((*head.reg_convs, *head.cls_convs))]
        model.eval()(torch.rand((1, 3, 128, 128), generator=generator) * 255)
        for hook in hooks:
            hook.remove()
        levels = len(head.reg_convs)
        for level in range(levels):
            for conv, source, spread, bias in ((head.reg_preds[level], features[level], 0.4, 0.0),
                                               (head.obj_preds[level], features[level], 1.5, -1.0),
                                               (head.cls_preds[level], features[levels + level], 1.5, -1.0)):
                scale = spread / (float(source.std()) * conv.weight[0].numel() ** 0.5)
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * scale)
                conv.bias.fill_(bias)
            head.reg_preds[level].bias[2:].fill_(1.0)  # boxes ~e times the stride: the size of the tiny set's objects
    return model


def write_checkpoint(root: Path, test_size: tuple[int, int]) -> tuple[Path, Path]:
    exp_file = root / f"exp_{test_size[0]}x{test_size[1]}.py"
    exp_file.write_text(EXP_TEXT.format(test_size=test_size, out=str(root / "runs")))
    exp = load_exp(exp_file)
    torch.manual_seed(0)
    model = lively_model(exp.get_model())
    ckpt = root / f"ckpt_{test_size[0]}x{test_size[1]}.pth"
    torch.save({"model": model.state_dict()}, ckpt)
    return exp_file, ckpt


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[tuple[int, int], tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("parity")
    return {size: write_checkpoint(root, size) for size in TEST_SIZES}


def stock_model(exp_file: Path, ckpt: Path) -> tuple[object, torch.nn.Module]:
    """The model as stock tools/demo.py and tools/eval.py build it: get_model, load_state_dict(ckpt["model"])."""
    exp = load_exp(exp_file)
    model = exp.get_model()
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True)["model"])
    return exp, model.eval()


def frame(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    image[: shape[0] // 2, : shape[1] // 2] = (40, 200, 40)
    return image


@torch.no_grad()
def stock_class_aware(exp, model, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCOEvaluator's steps on one frame: preprocess, fp32 forward, class-aware postprocess, ``bboxes /= scale``."""
    tensor = torch.from_numpy(ValTransform(legacy=False)(img, None, exp.test_size)[0]).unsqueeze(0).float()
    output = postprocess(model(tensor), exp.num_classes, exp.test_conf, exp.nmsthre)[0]
    assert output is not None, "the stock model found nothing: the comparison would be empty"
    output = output.cpu()
    bboxes = output[:, 0:4]
    bboxes /= min(exp.test_size[0] / float(img.shape[0]), exp.test_size[1] / float(img.shape[1]))
    return bboxes.numpy(), (output[:, 4] * output[:, 5]).numpy(), output[:, 6].numpy()


@torch.no_grad()
def stock_demo(exp, model, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The real ``yolox.tools.demo.Predictor`` (class-agnostic NMS), scaled back as its ``visual`` does."""
    outputs, info = Predictor(model, exp, device="cpu").inference(img)
    output = outputs[0].cpu()
    bboxes = output[:, 0:4]
    bboxes /= info["ratio"]
    return bboxes.numpy(), (output[:, 4] * output[:, 5]).numpy(), output[:, 6].numpy()


def clip_rule(boxes: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The documented rule, written from its description: clip to the image, keep boxes with area."""
    clipped = boxes.copy()
    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], 0, width)
    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], 0, height)
    keep = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) > 0
    return clipped, keep


def assert_same_detections(ours: np.ndarray, stock: tuple[np.ndarray, np.ndarray, np.ndarray],
                           img: np.ndarray) -> np.ndarray:
    boxes, scores, classes = stock
    clipped, keep = clip_rule(boxes, *img.shape[:2])
    assert ours.shape == (int(keep.sum()), 6)
    np.testing.assert_array_equal(ours[:, :4], clipped[keep])  # float32 values carried exactly
    np.testing.assert_array_equal(ours[:, 4], scores[keep])
    np.testing.assert_array_equal(ours[:, 5], classes[keep] + 1)  # det files count classes from 1
    return keep


@pytest.mark.parametrize("test_size", TEST_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detector_boxes_equal_stock_class_aware_postprocess(weights, test_size):
    exp_file, ckpt = weights[test_size]
    exp, model = stock_model(exp_file, ckpt)
    detector = Detector(load_exp(exp_file), ckpt, device="cpu")
    assert detector.precision == "fp32" and detector.min_conf == exp.test_conf
    clipped = dropped = 0
    for k, shape in enumerate(SHAPES):
        img = frame(shape, k)
        stock = stock_class_aware(exp, model, img)
        keep = assert_same_detections(detector([img])[0], stock, img)
        dropped += int((~keep).sum())
        clipped += int((clip_rule(stock[0], *shape)[0] != stock[0]).any(axis=1).sum())
    assert clipped > dropped > 0  # the rule was exercised: boxes cut at the border, boxes wholly in the padding


def test_class_agnostic_option_equals_stock_demo(weights):
    exp_file, ckpt = weights[(128, 128)]
    exp, model = stock_model(exp_file, ckpt)
    detector = Detector(load_exp(exp_file), ckpt, device="cpu", class_agnostic=True)
    aware = Detector(load_exp(exp_file), ckpt, device="cpu")
    differs = False
    for k, shape in enumerate(SHAPES):
        img = frame(shape, 10 + k)
        ours = detector([img])[0]
        assert_same_detections(ours, stock_demo(exp, model, img), img)
        differs |= len(ours) != len(aware([img])[0])
    assert differs  # the two NMS modes really disagree on these frames, so the option is tested


def test_fp16_on_cpu_stays_stock_fp32(weights):
    exp_file, ckpt = weights[(96, 160)]
    exp, model = stock_model(exp_file, ckpt)
    detector = Detector(load_exp(exp_file), ckpt, device="cpu", fp16=True)
    assert detector.precision == "fp32" and next(detector.model.parameters()).dtype == torch.float32
    img = frame((90, 160), 3)
    assert_same_detections(detector([img])[0], stock_class_aware(exp, model, img), img)


def _apply_rule_to_coco(detections: list[dict], coco) -> list[dict]:
    """Stock COCO results with the clip rule applied (xywh -> xyxy, clip, drop no-area, xywh)."""
    kept = []
    for det in detections:
        info = coco.imgs[det["image_id"]]
        x, y, w, h = det["bbox"]
        box, keep = clip_rule(np.array([[x, y, x + w, y + h]]), info["height"], info["width"])
        if keep[0]:
            x1, y1, x2, y2 = box[0].tolist()
            kept.append({**det, "bbox": [x1, y1, x2 - x1, y2 - y1]})
    return kept


@torch.no_grad()
def test_validation_map_equals_stock_coco_evaluator_after_the_rule(make_tiny_exp):
    exp = load_exp(make_tiny_exp("self.test_size = (128, 128)\nself.test_conf = 1e-3"))  # 96x160 frames: padding
    torch.manual_seed(0)
    model = lively_model(exp.get_model(), seed=1).eval()
    ours = evaluate(model, exp.get_val_dataset("val"), exp, torch.device("cpu"), batch_size=4)

    # stock COCOEvaluator.evaluate on the CPU: its eval dataset, forward, postprocess, convert_to_coco_format
    dataset = COCODataset(data_dir=exp.data_dir, json_file=exp.val_ann, name="", img_size=exp.test_size,
                          preproc=ValTransform(legacy=False))
    loader = DataLoader(dataset, batch_size=4, shuffle=False)
    evaluator = COCOEvaluator(loader, exp.test_size, exp.test_conf, exp.nmsthre, exp.num_classes)
    stock, project = [], []
    for imgs, _, info_imgs, ids in loader:
        outputs = postprocess(model(imgs.float()), exp.num_classes, exp.test_conf, exp.nmsthre)
        infos = list(zip(info_imgs[0].tolist(), info_imgs[1].tolist()))
        project += coco_detections([o.clone() if o is not None else None for o in outputs], infos,
                                   [int(i) for i in ids], dataset.class_ids, exp.test_size)
        stock += evaluator.convert_to_coco_format(outputs, info_imgs, ids)
    ruled = _apply_rule_to_coco(stock, dataset.coco)
    assert len(stock) > len(ruled) > 0 and ours["num_detections"] == len(ruled) == len(project)
    for a, b in zip(project, ruled):
        assert (a["image_id"], a["category_id"], a["score"]) == (b["image_id"], b["category_id"], b["score"])
        np.testing.assert_allclose(a["bbox"], b["bbox"], atol=1e-4)
    expected = coco_map(dataset.coco, ruled, dataset._classes)
    assert ours["precision"] == "fp32" and ours["ap50"] > 0
    assert (ours["ap50_95"], ours["ap50"], ours["ap_per_class"]) == (
        expected["ap50_95"], expected["ap50"], expected["ap_per_class"])  # bit for bit
