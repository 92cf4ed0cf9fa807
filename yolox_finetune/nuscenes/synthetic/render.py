"""Draw synthetic camera images: street, buildings and road users as shaded boxes seen through the real projection.

Objects are painted far to near (a box's visible faces never overlap each other), so an id buffer drawn alongside
tells how much of each object is occluded: that is where the nuScenes visibility level comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from yolox_finetune.nuscenes.geometry import box_corners, quaternion_to_matrix, sensor_to_world, yaw_quaternion
from yolox_finetune.nuscenes.synthetic.world import Actor, World

NEAR_PLANE = 0.2  # m; geometry closer to the camera is cut away before projection
_SHIFT = 4  # sub-pixel bits for cv2.fillPoly
_SUN = np.array([0.35, 0.45, 0.82]) / np.linalg.norm([0.35, 0.45, 0.82])

# corner indices of a box (devkit order) for its side faces as (top edge, bottom edge), and its top face
_SIDE_FACES = (((0, 1), (3, 2)), ((5, 4), (6, 7)), ((4, 0), (7, 3)), ((1, 5), (2, 6)))
_TOP_FACE = (0, 1, 5, 4)


@dataclass
class CameraView:
    """Everything that maps world points to one image: ego pose and camera calibration at one timestamp."""

    ego_translation: np.ndarray
    ego_rotation: np.ndarray
    cam_translation: np.ndarray
    cam_rotation: np.ndarray
    intrinsic: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        # world -> camera as one affine map (the converter's chain global -> ego -> camera, folded together)
        ego_rot, cam_rot = quaternion_to_matrix(self.ego_rotation), quaternion_to_matrix(self.cam_rotation)
        self.rotation = cam_rot.T @ ego_rot.T
        self.offset = -self.rotation @ self.ego_translation - cam_rot.T @ self.cam_translation
        self.camera_position = sensor_to_world(np.zeros((1, 3)), self.ego_translation, self.ego_rotation,
                                               self.cam_translation, self.cam_rotation)[0]

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world points -> camera frame."""
        return points @ self.rotation.T + self.offset

    def sees(self, corners_cam: np.ndarray) -> bool:
        """Cheap frustum test for a box (8, 3) in the camera frame: False only when it is surely out of view."""
        front = corners_cam[:, 2] >= NEAR_PLANE
        if not front.any():
            return False
        if not front.all():
            return True
        uv = corners_cam[:, :2] / corners_cam[:, 2:3] * self.intrinsic[[0, 1], [0, 1]] + self.intrinsic[:2, 2]
        return not (np.all(uv[:, 0] < 0) or np.all(uv[:, 0] > self.width) or np.all(uv[:, 1] < 0)
                    or np.all(uv[:, 1] > self.height))


@dataclass
class Snapshot:
    """World-frame box corners of every drawable at one instant, shared by the six cameras."""

    actors: list[Actor]
    indices: list[int]  # index into world.actors, -1 for buildings
    corners: np.ndarray  # (M, 8, 3)


def snapshot(world: World, t: float) -> Snapshot:
    drawables = [(-1, b) for b in world.buildings] + list(enumerate(world.actors))
    centres, yaws = zip(*(actor.pose(world.road, t) for _, actor in drawables))
    sizes = np.array([actor.size_wlh for _, actor in drawables])
    corners = box_corners(np.array(centres), sizes, yaw_quaternion(np.array(yaws)))
    return Snapshot([a for _, a in drawables], [i for i, _ in drawables], corners)


def _clip_near(polygon: np.ndarray) -> np.ndarray:
    """Cut a camera-frame polygon (K, 3) to the half-space z >= NEAR_PLANE (Sutherland-Hodgman, one plane)."""
    if np.all(polygon[:, 2] >= NEAR_PLANE):
        return polygon
    kept = []
    for current, following in zip(polygon, np.roll(polygon, -1, axis=0)):
        current_in, following_in = current[2] >= NEAR_PLANE, following[2] >= NEAR_PLANE
        if current_in:
            kept.append(current)
        if current_in != following_in:
            t = (NEAR_PLANE - current[2]) / (following[2] - current[2])
            kept.append(current + t * (following - current))
    return np.asarray(kept).reshape(-1, 3)


def _pixels(polygon_cam: np.ndarray, intrinsic: np.ndarray) -> np.ndarray | None:
    polygon_cam = _clip_near(polygon_cam)
    if len(polygon_cam) < 3:
        return None
    uvw = polygon_cam @ intrinsic.T
    uv = uvw[:, :2] / uvw[:, 2:3]
    uv = np.clip(uv, -1e5, 1e5)
    return np.round(uv * (1 << _SHIFT)).astype(np.int32)


def _fill(canvas: np.ndarray, pixels: np.ndarray, value) -> None:
    cv2.fillPoly(canvas, [pixels], value, lineType=cv2.LINE_8, shift=_SHIFT)


def _shade(color, normal_world: np.ndarray) -> tuple[int, int, int]:
    light = 0.62 + 0.38 * max(0.0, float(normal_world @ _SUN))
    return tuple(int(min(255, c * light)) for c in color)


def _faces(actor: Actor, corners: np.ndarray, corners_cam: np.ndarray, centre_cam: np.ndarray):
    """Yield (polygon in camera frame, colour) for the faces and bands of one box the camera can see."""
    centre_world = corners.mean(axis=0)
    quads = []
    for (t0, t1), (b0, b1) in _SIDE_FACES:
        quads.append(((t0, t1, b1, b0), True))
    quads.append((_TOP_FACE, False))
    for indices, is_side in quads:
        face_cam = corners_cam[list(indices)]
        face_centre = face_cam.mean(axis=0)
        if float((face_centre - centre_cam) @ face_centre) >= 0:  # facing away from the camera
            continue
        normal = corners[list(indices)].mean(axis=0) - centre_world
        normal /= np.linalg.norm(normal) + 1e-9
        yield face_cam, _shade(actor.color, normal)
        if not is_side:
            continue
        top_a, top_b, bottom_b, bottom_a = face_cam
        for low, high, band_color in actor.kind.bands:
            band = np.stack([bottom_a + high * (top_a - bottom_a), bottom_b + high * (top_b - bottom_b),
                             bottom_b + low * (top_b - bottom_b), bottom_a + low * (top_a - bottom_a)])
            yield band, _shade(band_color, normal)


def _background(view: CameraView, world: World, t: float) -> np.ndarray:
    """Sky, street surface (road, parking strips, sidewalks) and lane markings around the ego car."""
    h, w = view.height, view.width
    image = np.empty((h, w, 3), dtype=np.uint8)
    ego_xyz, ego_yaw = world.ego_pose(t)
    horizon_world = ego_xyz + 1e4 * np.array([np.cos(ego_yaw), np.sin(ego_yaw), 0.0])
    far_ahead = view.to_camera(horizon_world[None])[0]
    if far_ahead[2] > 0:
        horizon = int(np.clip((view.intrinsic @ far_ahead)[1] / far_ahead[2], 0, h))
    else:
        horizon = int(view.intrinsic[1, 2])
    rows = np.arange(h, dtype=np.float32)[:, None]
    sky = np.array([235, 205, 160], dtype=np.float32) - rows / max(horizon, 1) * np.array([60, 40, 10])
    image[:] = np.clip(sky, 0, 255).astype(np.uint8)[:, None, :]  # BGR: light blue sky
    image[horizon:] = (92, 94, 98)

    s_ego = world.ego_speed * t
    strips = [(-7.0, 7.0, (70, 72, 75)), (7.0, 10.0, (85, 88, 90)), (-10.0, -7.0, (85, 88, 90)),
              (10.0, 13.5, (150, 155, 160)), (-13.5, -10.0, (150, 155, 160))]
    quads_s, quads_d, heights, colors = [], [], [], []
    segment = 6.0
    for s in np.arange(s_ego - 70.0, s_ego + 90.0, segment):
        for d0, d1, color in strips:
            quads_s.append([s, s + segment, s + segment, s])
            quads_d.append([d0, d0, d1, d1])
            heights.append(0.0)
            colors.append(color)
    for s in np.arange(np.floor((s_ego - 70.0) / 9.0) * 9.0, s_ego + 90.0, 9.0):
        for d in (-3.5, 0.0, 3.5):
            quads_s.append([s, s + 3.0, s + 3.0, s])
            quads_d.append([d - 0.07, d - 0.07, d + 0.07, d + 0.07])
            heights.append(0.01)
            colors.append((0, 200, 230) if d == 0.0 else (235, 235, 235))
    x, y, _ = world.road.pose(np.array(quads_s), np.array(quads_d))
    z = np.broadcast_to(np.array(heights)[:, None], x.shape)
    quads_cam = view.to_camera(np.stack([x, y, z], axis=-1))
    in_front = quads_cam[..., 2] >= NEAR_PLANE
    uvw = quads_cam @ view.intrinsic.T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = uvw[..., :2] / uvw[..., 2:3]
    whole = in_front.all(axis=1)
    off_image = whole & ((uv[..., 0].max(axis=1) < 0) | (uv[..., 0].min(axis=1) > w) |
                         (uv[..., 1].max(axis=1) < 0) | (uv[..., 1].min(axis=1) > h))
    fixed = np.round(np.clip(np.nan_to_num(uv), -1e5, 1e5) * (1 << _SHIFT)).astype(np.int32)
    for k in np.flatnonzero(in_front.any(axis=1) & ~off_image):
        pixels = fixed[k] if whole[k] else _pixels(quads_cam[k], view.intrinsic)
        if pixels is not None:
            _fill(image, pixels, colors[k])
    return image


def render_view(view: CameraView, world: World, t: float, rng: np.random.Generator, with_ids: bool = False,
                scene: Snapshot | None = None) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
    """BGR image of the world at time ``t``; with ``with_ids`` also {actor index: (visible px, silhouette px)}.

    ``scene`` may carry the precomputed :func:`snapshot` at ``t`` (shared by the cameras of one instant).
    """
    scene = scene if scene is not None else snapshot(world, t)
    image = _background(view, world, t)
    ids = np.zeros((view.height, view.width), dtype=np.int32) if with_ids else None
    scratch = np.zeros((view.height, view.width), dtype=np.uint8) if with_ids else None
    corners_cam = view.to_camera(scene.corners)
    distance = np.linalg.norm(scene.corners.mean(axis=1) - view.camera_position, axis=1)
    silhouettes = {}
    for m in np.argsort(-distance, kind="stable"):
        if distance[m] > 150.0 or not view.sees(corners_cam[m]):
            continue
        actor, index = scene.actors[m], scene.indices[m]
        polygons = []
        for polygon, color in _faces(actor, scene.corners[m], corners_cam[m], corners_cam[m].mean(axis=0)):
            pixels = _pixels(polygon, view.intrinsic)
            if pixels is not None:
                _fill(image, pixels, color[::-1])  # RGB -> BGR
                polygons.append(pixels)
        if ids is None or not polygons:
            continue
        for pixels in polygons:
            _fill(ids, pixels, index + 1 if index >= 0 else -1)
        if index >= 0:
            for pixels in polygons:
                _fill(scratch, pixels, 1)
            points = np.concatenate(polygons) >> _SHIFT
            x0, y0 = np.clip(points.min(axis=0), 0, None)
            x1, y1 = points.max(axis=0)
            region = scratch[y0:max(y1 + 2, y0), x0:max(x1 + 2, x0)]
            silhouettes[index] = int(np.count_nonzero(region))
            region[:] = 0
    noise = rng.integers(-6, 7, size=(view.height, view.width, 1), dtype=np.int16)
    image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    if ids is None:
        return image, {}
    visible = np.bincount(ids[ids > 0].ravel(), minlength=len(world.actors) + 1)
    return image, {i: (int(visible[i + 1]), px) for i, px in silhouettes.items()}


def visibility_token(visible_px: int, silhouette_px: int) -> str:
    """nuScenes visibility level ('1'..'4') of a visible-pixel fraction: 0-40, 40-60, 60-80, 80-100 %."""
    if silhouette_px <= 0:
        return "1"
    fraction = visible_px / silhouette_px
    return "1" if fraction <= 0.4 else "2" if fraction <= 0.6 else "3" if fraction <= 0.8 else "4"
