"""2D image boxes of 3D annotations, exactly as nuscenes-devkit's ``export_2d_annotations_as_json.py`` defines them.

The devkit keeps the box corners in front of the camera, projects them, takes the convex hull with shapely and
intersects it with the image canvas, one box at a time. The axis-aligned extent of (hull ∩ canvas) only depends on
a finite candidate set, which we evaluate for thousands of boxes at once:

* the projected corners that lie inside the canvas,
* the points where a segment between two projected corners crosses a canvas edge (hull edges are among them),
* the canvas corners that lie inside the hull (tested against the triangles of projected corners).

Every candidate lies in hull ∩ canvas and every vertex of that polygon is a candidate, so min/max over the
candidates is the devkit's box. Where the devkit crashes (the hull is a point or a segment, or it only touches the
canvas), the box is reported as degenerate so the caller can skip and count it.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from yolox_finetune.nuscenes.geometry import box_corners, quaternion_to_matrix

#: per-box outcome codes returned by :func:`clip_hulls_to_canvas`.
BOX_OK = 0
BOX_OUTSIDE = 1  # no part of the hull is on the canvas (the devkit returns None)
BOX_DEGENERATE = 2  # the devkit raises: hull of < 3 non-collinear points, or a zero-area intersection

_PAIRS = np.array(list(combinations(range(8), 2)))  # (28, 2)
_TRIPLES = np.array(list(combinations(range(8), 3)))  # (56, 3)
_CHUNK = 4096


def _cross(ax, ay, bx, by):
    return ax * by - ay * bx


def _collinear(px: np.ndarray, py: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """True where the valid points of a row span no area (fewer than three distinct directions)."""
    first = np.argmax(valid, axis=1)
    rows = np.arange(len(px))
    ax, ay = px[rows, first][:, None], py[rows, first][:, None]
    dist = np.where(valid, (px - ax) ** 2 + (py - ay) ** 2, -1.0)
    far = np.argmax(dist, axis=1)
    bx, by = px[rows, far][:, None], py[rows, far][:, None]
    cross = np.where(valid, _cross(bx - ax, by - ay, px - ax, py - ay), 0.0)
    return ~np.any(cross != 0.0, axis=1)


def _canvas_corners_in_hull(px, py, valid, width, height):
    """(n, 4) bool: is each canvas corner inside the convex hull of the row's valid points (closed)."""
    a, b, c = (_TRIPLES[:, k] for k in range(3))
    ax, ay, bx, by, cx, cy = px[:, a], py[:, a], px[:, b], py[:, b], px[:, c], py[:, c]
    tri_ok = valid[:, a] & valid[:, b] & valid[:, c] & (_cross(bx - ax, by - ay, cx - ax, cy - ay) != 0.0)
    inside = []
    for qx, qy in ((0.0, 0.0), (width, 0.0), (0.0, height), (width, height)):
        qx = np.broadcast_to(np.asarray(qx, dtype=np.float64).reshape(-1, 1), ax.shape)
        qy = np.broadcast_to(np.asarray(qy, dtype=np.float64).reshape(-1, 1), ax.shape)
        d1 = _cross(bx - ax, by - ay, qx - ax, qy - ay)
        d2 = _cross(cx - bx, cy - by, qx - bx, qy - by)
        d3 = _cross(ax - cx, ay - cy, qx - cx, qy - cy)
        hit = ((d1 >= 0) & (d2 >= 0) & (d3 >= 0)) | ((d1 <= 0) & (d2 <= 0) & (d3 <= 0))
        inside.append(np.any(hit & tri_ok, axis=1))
    return np.stack(inside, axis=1)


def _clip_chunk(pixels, in_front, width, height):
    n = len(pixels)
    px = np.where(in_front, pixels[..., 0], 0.0)
    py = np.where(in_front, pixels[..., 1], 0.0)
    w, h = width[:, None], height[:, None]
    point_in = in_front & (px >= 0) & (px <= w) & (py >= 0) & (py <= h)
    cand_x, cand_y, cand_ok = [px], [py], [point_in]

    i, j = _PAIRS[:, 0], _PAIRS[:, 1]
    pair_ok = in_front[:, i] & in_front[:, j]
    xi, yi, xj, yj = px[:, i], py[:, i], px[:, j], py[:, j]
    dx, dy = xj - xi, yj - yi
    with np.errstate(divide="ignore", invalid="ignore"):
        for edge in (np.zeros_like(w), w):  # vertical canvas edges x = 0 and x = W
            crosses = pair_ok & ((xi - edge) * (xj - edge) <= 0) & (dx != 0)
            y_at = yi + (edge - xi) / dx * dy
            cand_x.append(np.broadcast_to(edge, y_at.shape))
            cand_y.append(y_at)
            cand_ok.append(crosses & (y_at >= 0) & (y_at <= h))
        for edge in (np.zeros_like(h), h):  # horizontal canvas edges y = 0 and y = H
            crosses = pair_ok & ((yi - edge) * (yj - edge) <= 0) & (dy != 0)
            x_at = xi + (edge - yi) / dy * dx
            cand_x.append(x_at)
            cand_y.append(np.broadcast_to(edge, x_at.shape))
            cand_ok.append(crosses & (x_at >= 0) & (x_at <= w))

    corner_ok = np.zeros((n, 4), dtype=bool)
    needs_corners = np.any(in_front & ~point_in, axis=1)  # only hulls that leave the canvas can contain a corner
    if needs_corners.any():
        corner_ok[needs_corners] = _canvas_corners_in_hull(
            px[needs_corners], py[needs_corners], in_front[needs_corners], width[needs_corners], height[needs_corners]
        )
    zeros = np.zeros_like(width)
    cand_x.append(np.stack([zeros, width, zeros, width], axis=1))
    cand_y.append(np.stack([zeros, zeros, height, height], axis=1))
    cand_ok.append(corner_ok)

    cx, cy, ok = (np.concatenate(parts, axis=1) for parts in (cand_x, cand_y, cand_ok))
    boxes = np.stack(
        [
            np.where(ok, cx, np.inf).min(axis=1),
            np.where(ok, cy, np.inf).min(axis=1),
            np.where(ok, cx, -np.inf).max(axis=1),
            np.where(ok, cy, -np.inf).max(axis=1),
        ],
        axis=1,
    )
    any_candidate = ok.any(axis=1)
    flat_hull = (in_front.sum(axis=1) < 3) | _collinear(px, py, in_front)
    flat_overlap = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    status = np.full(n, BOX_OK, dtype=np.int8)
    status[any_candidate & (flat_hull | flat_overlap)] = BOX_DEGENERATE
    status[~any_candidate] = BOX_OUTSIDE
    boxes[status != BOX_OK] = np.nan
    return boxes, status


def clip_hulls_to_canvas(pixels: np.ndarray, in_front: np.ndarray, width: np.ndarray,
                         height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extent of (convex hull of the in-front projected corners) ∩ (image canvas), per box.

    ``pixels`` (N, 8, 2), ``in_front`` (N, 8) bool, ``width``/``height`` (N,) canvas sizes.
    Returns boxes (N, 4) as x1, y1, x2, y2 (NaN unless ok) and status (N,) of BOX_OK / BOX_OUTSIDE / BOX_DEGENERATE.
    """
    n = len(pixels)
    width = np.broadcast_to(np.asarray(width, dtype=np.float64), (n,))
    height = np.broadcast_to(np.asarray(height, dtype=np.float64), (n,))
    boxes = np.empty((n, 4), dtype=np.float64)
    status = np.empty(n, dtype=np.int8)
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        boxes[part], status[part] = _clip_chunk(pixels[part], in_front[part], width[part], height[part])
    return boxes, status


def projected_extent(pixels: np.ndarray, in_front: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 of the in-front projected corners, not clipped to the canvas (NaN when none)."""
    with np.errstate(invalid="ignore"):
        x, y = pixels[..., 0], pixels[..., 1]
        extent = np.stack([np.where(in_front, x, np.inf).min(axis=1), np.where(in_front, y, np.inf).min(axis=1),
                           np.where(in_front, x, -np.inf).max(axis=1), np.where(in_front, y, -np.inf).max(axis=1)],
                          axis=1)
    extent[~in_front.any(axis=1)] = np.nan
    return extent


def in_image_fraction(boxes: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """Area of the clipped box over the area of the unclipped projected box, per row (1 = fully inside the image)."""
    clipped = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    full = (extent[:, 2] - extent[:, 0]) * (extent[:, 3] - extent[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(full > 0, clipped / full, np.nan)
    return np.clip(fraction, 0.0, 1.0)


def project_boxes_into_frames(translation: np.ndarray, size_wlh: np.ndarray, rotation: np.ndarray,
                              frame_pose: np.ndarray, intrinsics: np.ndarray, frame_size: np.ndarray,
                              pair_frame: np.ndarray, pair_ann: np.ndarray,
                              with_extent: bool = False) -> tuple[np.ndarray, ...]:
    """2D boxes of P (annotation, image) pairs: ``(boxes, status)`` as :func:`clip_hulls_to_canvas`, plus the
    unclipped extent of the in-front corners (:func:`projected_extent`) as a third value with ``with_extent``.

    Global box -> ego frame of the image's pose -> camera frame -> keep corners with depth > 0 -> project ->
    hull ∩ canvas. Corners are computed once per annotation (A rows: translation, size, rotation) and the camera
    transform once per image (F rows: ``frame_pose`` = ego translation, ego rotation, camera translation, camera
    rotation; ``intrinsics`` (F, 3, 3); ``frame_size`` (F, 2) width, height); ``pair_frame`` / ``pair_ann`` (P,)
    index them.
    """
    corners = box_corners(translation, size_wlh, rotation)  # (A, 8, 3)
    ego_rot = quaternion_to_matrix(frame_pose[:, 3:7])
    cam_rot_t = np.swapaxes(quaternion_to_matrix(frame_pose[:, 10:14]), 1, 2)
    # p_cam = Rc^T (Re^T (p - te) - tc) = M p + b with M = Rc^T Re^T, b = -M te - Rc^T tc
    world_to_cam = cam_rot_t @ np.swapaxes(ego_rot, 1, 2)
    offset = -(world_to_cam @ frame_pose[:, 0:3, None])[..., 0] - (cam_rot_t @ frame_pose[:, 7:10, None])[..., 0]
    cam = corners[pair_ann] @ np.swapaxes(world_to_cam, 1, 2)[pair_frame] + offset[pair_frame][:, None, :]
    pixels = cam @ np.swapaxes(intrinsics, 1, 2)[pair_frame]
    with np.errstate(divide="ignore", invalid="ignore"):
        pixels = pixels[..., :2] / pixels[..., 2:3]
    in_front = cam[..., 2] > 0
    boxes, status = clip_hulls_to_canvas(pixels, in_front, frame_size[pair_frame, 0], frame_size[pair_frame, 1])
    if with_extent:
        return boxes, status, projected_extent(pixels, in_front)
    return boxes, status
