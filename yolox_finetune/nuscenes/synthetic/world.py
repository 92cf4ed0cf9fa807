"""A small road world for the synthetic dataset: a gently curving street, the ego car driving along it, and road
users that move coherently (lanes at constant speed, pedestrians on the sidewalks, parked vehicles, barriers).

Everything is a pure function of time and the seeded random generator, so a scene can be sampled at keyframes
and at sweeps alike and two runs with the same seed are identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: annotated region around the ego vehicle (m), as nuScenes annotates objects near the car.
ANNOTATION_RANGE = 50.0


@dataclass(frozen=True)
class ActorKind:
    """How one nuScenes category looks: size (w, l, h) in m, body colour (RGB) and horizontal bands on its sides."""

    category: str
    size_wlh: tuple[float, float, float]
    color: tuple[int, int, int]
    bands: tuple[tuple[float, float, tuple[int, int, int]], ...] = ()  # (from, to) height fractions and colour
    heading_offset: float = 0.0  # radians between the road direction and the box heading (barriers stand across)


_GLASS = (45, 55, 75)
_TYRE = (25, 25, 25)
KINDS: dict[str, ActorKind] = {k.category: k for k in (
    ActorKind("vehicle.car", (1.9, 4.5, 1.6), (215, 35, 35), ((0.55, 0.88, _GLASS), (0.0, 0.18, _TYRE))),
    ActorKind("vehicle.truck", (2.5, 7.5, 3.2), (35, 70, 215), ((0.7, 0.85, _GLASS), (0.0, 0.12, _TYRE))),
    ActorKind("vehicle.bus.rigid", (2.9, 11.5, 3.4), (245, 205, 25), ((0.45, 0.8, _GLASS), (0.0, 0.1, _TYRE))),
    ActorKind("vehicle.bus.bendy", (2.9, 17.5, 3.3), (245, 205, 25),
              ((0.45, 0.8, _GLASS), (0.0, 0.1, _TYRE), (0.9, 1.0, (200, 60, 20)))),
    ActorKind("vehicle.trailer", (2.6, 9.5, 3.8), (150, 95, 55), ((0.2, 0.25, (240, 240, 240)), (0.0, 0.12, _TYRE))),
    ActorKind("human.pedestrian.adult", (0.7, 0.7, 1.75), (40, 195, 70),
              ((0.86, 1.0, (235, 190, 150)), (0.0, 0.45, (30, 30, 95)))),
    ActorKind("human.pedestrian.child", (0.5, 0.5, 1.25), (40, 195, 70),
              ((0.82, 1.0, (235, 190, 150)), (0.0, 0.4, (30, 30, 95)))),
    ActorKind("human.pedestrian.construction_worker", (0.7, 0.7, 1.8), (40, 195, 70),
              ((0.86, 1.0, (250, 240, 40)), (0.0, 0.45, (30, 30, 95)))),
    ActorKind("human.pedestrian.police_officer", (0.7, 0.7, 1.8), (40, 195, 70),
              ((0.86, 1.0, (20, 30, 110)), (0.0, 0.45, (30, 30, 95)))),
    ActorKind("vehicle.motorcycle", (0.8, 2.1, 1.5), (205, 40, 205), ((0.0, 0.35, _TYRE), (0.8, 1.0, (30, 30, 30)))),
    ActorKind("vehicle.bicycle", (0.6, 1.7, 1.4), (40, 205, 220), ((0.0, 0.4, _TYRE), (0.8, 1.0, (235, 190, 150)))),
    ActorKind("vehicle.construction", (2.8, 6.5, 3.1), (250, 140, 0), ((0.6, 0.8, _GLASS), (0.0, 0.2, _TYRE))),
    ActorKind("movable_object.barrier", (2.4, 0.5, 1.0), (240, 240, 240), ((0.35, 0.65, (220, 30, 30)),),
              heading_offset=np.pi / 2),
    ActorKind("movable_object.trafficcone", (0.4, 0.4, 0.9), (255, 95, 0), ((0.55, 0.7, (250, 250, 250)),)),
)}


@dataclass(frozen=True)
class Road:
    """A street of constant curvature; ``s`` runs along it, ``d`` is the offset to the left of its centre line."""

    origin: tuple[float, float]
    heading: float
    curvature: float

    def pose(self, s: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, yaw) in the global frame of the point at arc length ``s`` and lateral offset ``d``."""
        s, d = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(d, dtype=np.float64))
        theta0, k = self.heading, self.curvature
        yaw = theta0 + k * s
        if abs(k) < 1e-9:
            x = self.origin[0] + s * np.cos(theta0)
            y = self.origin[1] + s * np.sin(theta0)
        else:
            x = self.origin[0] + (np.sin(yaw) - np.sin(theta0)) / k
            y = self.origin[1] - (np.cos(yaw) - np.cos(theta0)) / k
        return x - d * np.sin(yaw), y + d * np.cos(yaw), yaw


@dataclass
class Actor:
    """One object instance: it keeps its lane offset ``d`` and moves along the road at constant ``speed``."""

    kind: ActorKind
    size_wlh: tuple[float, float, float]
    s0: float
    d: float
    speed: float  # m/s along +s (negative: against the road direction)
    reverse: bool  # heading against the road direction
    color: tuple[int, int, int]
    attribute: str | None = None
    annotated_keyframes: range = field(default_factory=lambda: range(0))

    def pose(self, road: Road, t: float) -> tuple[np.ndarray, float]:
        """Box centre (3,) and yaw at time ``t`` (s)."""
        x, y, yaw = road.pose(self.s0 + self.speed * t, self.d)
        yaw = float(yaw) + (np.pi if self.reverse else 0.0) + self.kind.heading_offset
        return np.array([float(x), float(y), self.size_wlh[2] / 2]), yaw


@dataclass
class World:
    road: Road
    ego_speed: float
    ego_lane: float
    actors: list[Actor]
    buildings: list[Actor]

    def ego_pose(self, t: float) -> tuple[np.ndarray, float]:
        x, y, yaw = self.road.pose(self.ego_speed * t, self.ego_lane)
        return np.array([float(x), float(y), 0.0]), float(yaw)


def _jitter_color(rng: np.random.Generator, color: tuple[int, int, int], amount: int = 18) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in color)


def _jitter_size(rng: np.random.Generator, size: tuple[float, float, float]) -> tuple[float, float, float]:
    return tuple(float(round(v * rng.uniform(0.9, 1.1), 3)) for v in size)


class _Lane:
    """Places actors in one lane (constant offset and speed) without overlaps; same speed means no collisions."""

    def __init__(self, d: float, speed: float, reverse: bool, ego_speed: float, duration: float, gap: float):
        self.d, self.speed, self.reverse, self.gap = d, speed, reverse, gap
        self.ego_speed, self.duration = ego_speed, duration
        self.occupied: list[tuple[float, float]] = []

    def place(self, rng: np.random.Generator, length: float, window: tuple[float, float] = (-40.0, 50.0),
              tries: int = 30) -> float | None:
        """Arc position at t=0 such that the actor is ``window`` metres from the ego car half-way through."""
        for _ in range(tries):
            relative = rng.uniform(*window)
            s0 = relative - (self.speed - self.ego_speed) * self.duration / 2
            if self.claim(s0, length):
                return s0
        return None

    def claim(self, s0: float, length: float) -> bool:
        """Reserve ``length`` metres centred on ``s0`` if they are free (plus the lane's gap)."""
        if any(abs(s0 - s) < (length + other) / 2 + self.gap for s, other in self.occupied):
            return False
        self.occupied.append((s0, length))
        return True


def _moving_kind(rng: np.random.Generator, forward: bool) -> str:
    names = ["vehicle.car", "vehicle.truck", "vehicle.bus.rigid", "vehicle.bus.bendy", "vehicle.motorcycle"]
    weights = [0.55, 0.17, 0.12, 0.04, 0.12 if forward else 0.05]
    return str(rng.choice(names, p=np.asarray(weights) / sum(weights)))


def _pedestrian_kind(rng: np.random.Generator) -> str:
    return str(rng.choice(["human.pedestrian.adult", "human.pedestrian.child", "human.pedestrian.construction_worker",
                           "human.pedestrian.police_officer"], p=[0.78, 0.1, 0.08, 0.04]))


def make_world(rng: np.random.Generator, duration: float) -> World:
    """A random street scene lasting ``duration`` seconds: about 35 road users of all kinds around the ego car."""
    road = Road(origin=(float(rng.uniform(300, 1500)), float(rng.uniform(300, 1500))),
                heading=float(rng.uniform(-np.pi, np.pi)), curvature=float(rng.uniform(-0.004, 0.004)))
    ego_speed, ego_lane = float(rng.uniform(4.0, 8.0)), -1.75
    actors: list[Actor] = []

    def add(lane: _Lane, category: str, window=(-40.0, 50.0), attribute=None) -> Actor | None:
        kind = KINDS[category]
        size = _jitter_size(rng, kind.size_wlh)
        s0 = lane.place(rng, size[1] if kind.heading_offset == 0 else size[0], window)
        if s0 is None:
            return None
        actor = Actor(kind, size, s0, lane.d, lane.speed, lane.reverse, _jitter_color(rng, kind.color), attribute)
        actors.append(actor)
        return actor

    def hitch(traffic_lane: _Lane, truck: Actor) -> None:
        """A trailer right behind a truck, moving with it."""
        kind = KINDS["vehicle.trailer"]
        size = _jitter_size(rng, kind.size_wlh)
        behind = -1.0 if not traffic_lane.reverse else 1.0
        s0 = truck.s0 + behind * ((truck.size_wlh[1] + size[1]) / 2 + 1.0)
        saved_gap, traffic_lane.gap = traffic_lane.gap, 0.5
        if traffic_lane.claim(s0, size[1]):
            actors.append(Actor(kind, size, s0, traffic_lane.d, traffic_lane.speed, traffic_lane.reverse,
                                _jitter_color(rng, kind.color), "vehicle.moving"))
        traffic_lane.gap = saved_gap

    def lane(d, speed, reverse=False, gap=4.0):
        return _Lane(d, speed, reverse, ego_speed, duration, gap)

    ego = lane(ego_lane, ego_speed)
    ego.occupied.append((0.0, 4.5 + 8.0))  # keep the ego car's own spot free (same speed: fixed offset)
    outer = lane(-5.25, ego_speed * float(rng.uniform(0.5, 0.8)))
    oncoming = [lane(1.75, -float(rng.uniform(5.0, 9.0)), reverse=True),
                lane(5.25, -float(rng.uniform(4.0, 7.0)), reverse=True)]
    for traffic_lane, forced, count in ((ego, ["vehicle.truck"], 2), (outer, ["vehicle.bus.rigid",
                                        "vehicle.motorcycle"], 4), (oncoming[0], ["vehicle.car"], 4),
                                        (oncoming[1], ["vehicle.bus.rigid"], 3)):
        kinds = forced + [_moving_kind(rng, not traffic_lane.reverse) for _ in range(count - len(forced))]
        for category in kinds:
            moving = "cycle.with_rider" if category == "vehicle.motorcycle" else "vehicle.moving"
            actor = add(traffic_lane, category, attribute=moving)
            if actor is not None and category == "vehicle.truck" and rng.uniform() < 0.6:
                hitch(traffic_lane, actor)

    parking_side = float(rng.choice([-1.0, 1.0]))  # parked vehicles on one side only: the other sidewalk stays in view
    parking = lane(parking_side * 8.6, 0.0, reverse=bool(rng.uniform() < 0.5), gap=6.0)
    for category in ["vehicle.car", "vehicle.trailer", "vehicle.construction"] + ["vehicle.car"] * int(
            rng.integers(0, 2)):
        add(parking, category, window=(-35.0, 45.0), attribute="vehicle.parked")
    for side in (-1.0, 1.0):
        kerb = lane(side * 7.3, 0.0, gap=0.5)
        for category in ["movable_object.barrier", "movable_object.trafficcone"]:
            add(kerb, category, window=(-25.0, 40.0))
        bikes = lane(side * 10.2, float(rng.uniform(3.0, 5.0)) * (1 if side < 0 else -1), reverse=side > 0, gap=2.0)
        for _ in range(int(rng.integers(0, 2) if side == parking_side else rng.integers(1, 4))):
            add(bikes, "vehicle.bicycle", attribute="cycle.with_rider")
        # the sidewalk behind the parked vehicles gets fewer walkers: they would mostly be hidden
        walkways = ((side * 11.5, 1.0, 2), (side * 12.6, -1.0, 2)) if side != parking_side else ((side * 11.5, 1.0, 1),)
        for d, direction, most in walkways:
            walkers = lane(d, direction * float(rng.uniform(1.0, 1.6)), reverse=direction < 0, gap=1.0)
            for _ in range(int(rng.integers(1, most + 2))):
                add(walkers, _pedestrian_kind(rng), window=(-30.0, 40.0), attribute="pedestrian.moving")
        if side != parking_side:  # people waiting at the kerb
            waiting = lane(side * 7.9, 0.0, reverse=bool(rng.uniform() < 0.5), gap=0.8)
            for _ in range(int(rng.integers(1, 3))):
                add(waiting, _pedestrian_kind(rng), window=(-20.0, 35.0), attribute="pedestrian.standing")

    buildings = []
    for side in (-1.0, 1.0):
        s = -80.0 + float(rng.uniform(0, 10))
        while s < ego_speed * duration + 120:
            length, depth, height = (float(v) for v in rng.uniform([10, 8, 6], [30, 14, 22]))
            tone = int(rng.integers(110, 190))
            color = (tone, int(tone * 0.95), int(tone * 0.85))
            windows = ((0.3, 0.4, _GLASS), (0.6, 0.7, _GLASS))
            kind = ActorKind("static.building", (depth, length, height), color, windows)
            buildings.append(Actor(kind, (depth, length, height), s + length / 2, side * (16 + depth / 2), 0.0, False,
                                   color))
            s += length + float(rng.uniform(2, 8))
    return World(road=road, ego_speed=ego_speed, ego_lane=ego_lane, actors=actors, buildings=buildings)


def annotate_windows(world: World, keyframe_times: list[float]) -> None:
    """Set each actor's contiguous range of annotated keyframes (within :data:`ANNOTATION_RANGE` of the ego car)."""
    ego_xy = np.array([world.ego_pose(t)[0][:2] for t in keyframe_times])
    for actor in world.actors:
        xy = np.array([actor.pose(world.road, t)[0][:2] for t in keyframe_times])
        near = np.flatnonzero(np.linalg.norm(xy - ego_xy, axis=1) <= ANNOTATION_RANGE)
        actor.annotated_keyframes = range(int(near[0]), int(near[-1]) + 1) if len(near) else range(0)
