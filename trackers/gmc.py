"""Global (camera) motion compensation: the image warp between consecutive frames, from the pixels.

A moving camera shifts every object in the image; a Kalman filter that does not know it predicts boxes where the
object was, and IoU association breaks. ``GMC.estimate`` returns the 2x3 affine warp that maps the previous
frame's pixel coordinates onto the current frame's, which BoT-SORT applies to the predicted track states.

Methods: ``sparseOptFlow`` (corner features tracked by pyramidal Lucas-Kanade, the default: fast and robust),
``orb`` (ORB features matched across frames), ``ecc`` (dense intensity alignment, slowest), ``none``.
Features on detected objects are masked out, since those move by themselves.
"""

from __future__ import annotations

import cv2
import numpy as np

from trackers.config import CMC_METHODS
from trackers.errors import TrackerError

#: fraction of the image border ignored by feature detection (borders often carry overlays or black bars).
BORDER_FRACTION = 0.02
#: fewest matched point pairs for a warp estimate; fewer means "no reliable motion": identity.
MIN_POINT_PAIRS = 6
#: ECC pyramid: at most this many levels, none smaller than this many pixels on its short side.
ECC_MAX_LEVELS = 4
ECC_MIN_LEVEL_SIZE = 32
#: an ECC alignment whose correlation coefficient is below this is not trusted (diverged or wrong basin).
ECC_MIN_CORRELATION = 0.5


def identity_warp() -> np.ndarray:
    """The 2x3 warp of a still camera (a fresh array: callers may scale it in place)."""
    return np.eye(2, 3, dtype=np.float64)


def is_identity_warp(warp: np.ndarray) -> bool:
    """Whether ``warp`` leaves every point where it is (then there is nothing to compensate)."""
    return bool(np.array_equal(warp, identity_warp()))


class GMC:
    """Stateful estimator: call ``estimate`` once per frame in order; the first frame gives the identity."""

    def __init__(self, method: str = "sparseOptFlow", downscale: int = 2) -> None:
        if method not in CMC_METHODS:
            raise TrackerError(f"camera motion compensation {method!r} is unknown; "
                               f"choose one of {', '.join(CMC_METHODS)}")
        self.method = method
        self.downscale = max(int(downscale), 1)
        if method == "orb":
            self._orb = cv2.ORB_create(nfeatures=1000)
            self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame (a new sequence)."""
        self._prev_gray: np.ndarray | None = None
        self._prev_points: np.ndarray | None = None
        self._prev_descriptors: np.ndarray | None = None
        self._prev_blurred: np.ndarray | None = None

    def estimate(self, image: np.ndarray | None, det_boxes: np.ndarray | None = None) -> np.ndarray:
        """Warp (2, 3) from the previous frame to ``image`` (BGR or gray); ``det_boxes`` (N, 4) xyxy are ignored
        as feature sources. Identity for the first frame, a size change, ``none`` or too few features."""
        if self.method == "none" or image is None:
            return identity_warp()
        gray = self._prepare(image)
        previous = self._prev_gray if self._prev_gray is not None else self._prev_blurred
        if previous is not None and previous.shape != gray.shape:
            self.reset()
        if self.method == "ecc":
            warp = self._ecc(gray)
        else:
            mask = self._feature_mask(gray.shape, det_boxes)
            warp = self._sparse_flow(gray, mask) if self.method == "sparseOptFlow" else self._orb_match(gray, mask)
        warp[:, 2] *= self.downscale  # translation back to full-resolution pixels
        return warp

    # -- helpers --------------------------------------------------------------------------------------------------
    def _prepare(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        if gray.dtype != np.uint8:
            gray = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        if self.downscale > 1:
            h, w = gray.shape
            gray = cv2.resize(gray, (w // self.downscale, h // self.downscale), interpolation=cv2.INTER_AREA)
        return gray

    def _feature_mask(self, shape: tuple[int, int], det_boxes: np.ndarray | None) -> np.ndarray:
        h, w = shape
        mask = np.zeros((h, w), dtype=np.uint8)
        by, bx = int(h * BORDER_FRACTION), int(w * BORDER_FRACTION)
        mask[by:h - by, bx:w - bx] = 255
        if det_boxes is not None and len(det_boxes):
            scaled = np.asarray(det_boxes, dtype=np.float64).reshape(-1, 4) / self.downscale
            for x1, y1, x2, y2 in np.round(scaled).astype(int):
                mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = 0
        return mask

    def _sparse_flow(self, gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
        points = cv2.goodFeaturesToTrack(gray, maxCorners=1000, qualityLevel=0.01, minDistance=1, blockSize=3,
                                         mask=mask)
        warp = identity_warp()
        if self._prev_gray is not None and self._prev_points is not None and len(self._prev_points):
            moved, status, _ = cv2.calcOpticalFlowPyrLK(self._prev_gray, gray, self._prev_points, None)
            ok = status.reshape(-1).astype(bool)
            warp = _fit_warp(self._prev_points.reshape(-1, 2)[ok], moved.reshape(-1, 2)[ok])
        self._prev_gray, self._prev_points = gray, points
        return warp

    def _orb_match(self, gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
        keypoints, descriptors = self._orb.detectAndCompute(gray, mask)
        points = np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 2)
        warp = identity_warp()
        if self._prev_descriptors is not None and descriptors is not None and len(self._prev_descriptors) >= 2 \
                and len(descriptors) >= 2:
            pairs = self._matcher.knnMatch(self._prev_descriptors, descriptors, k=2)
            max_shift = 0.25 * np.array(gray.shape[::-1])
            src, dst = [], []
            for pair in pairs:
                if len(pair) < 2 or pair[0].distance >= 0.8 * pair[1].distance:  # Lowe's ratio test
                    continue
                a, b = self._prev_points[pair[0].queryIdx], points[pair[0].trainIdx]
                if (np.abs(b - a) < max_shift).all():  # a jump across the image is a false match
                    src.append(a)
                    dst.append(b)
            warp = _fit_warp(np.array(src).reshape(-1, 2), np.array(dst).reshape(-1, 2))
        self._prev_gray, self._prev_points, self._prev_descriptors = gray, points, descriptors
        return warp

    def _ecc(self, gray: np.ndarray) -> np.ndarray:
        """Coarse-to-fine ECC: alignment on an image pyramid, so shifts of tens of pixels (beyond the reach of
        single-scale ECC, which starts from "no motion") are found on the small levels and refined on the large."""
        blurred = cv2.GaussianBlur(gray, (3, 3), 1.5)
        previous, self._prev_blurred = self._prev_blurred, blurred
        if previous is None:
            return identity_warp()
        pyramid = [(previous, blurred)]
        while len(pyramid) < ECC_MAX_LEVELS and min(pyramid[-1][0].shape) >= 2 * ECC_MIN_LEVEL_SIZE:
            pyramid.append((cv2.pyrDown(pyramid[-1][0]), cv2.pyrDown(pyramid[-1][1])))
        warp = identity_warp().astype(np.float32)  # findTransformECC wants float32
        best = identity_warp()
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
        for level, (template, current) in enumerate(reversed(pyramid)):
            if level:
                warp[:, 2] *= 2.0  # translation in the next, twice larger level
                best[:, 2] *= 2.0
            try:
                # the warp maps template (previous frame) coordinates to input (current frame) coordinates
                correlation, found = cv2.findTransformECC(template, current, warp.copy(), cv2.MOTION_EUCLIDEAN,
                                                          criteria, None, 1)
            except cv2.error:  # no convergence on this level (too little texture): keep the coarser estimate
                continue
            if correlation >= ECC_MIN_CORRELATION:
                warp, best = found, found.astype(np.float64)
        return best


def _fit_warp(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Similarity warp (rotation, scale, translation) src -> dst, robust to outliers; identity when unsure."""
    if len(src) < MIN_POINT_PAIRS:
        return identity_warp()
    warp, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.RANSAC)
    return identity_warp() if warp is None else warp.astype(np.float64)
