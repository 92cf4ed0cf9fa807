"""Every tracker option, its default and its meaning, in one visible place.

Each option is a field of a frozen dataclass below, and the ``#:`` comment above a field is its documentation (the
tracking tools show it in ``--help`` and in the config files they write). A config checks itself when it is built
and raises TrackerError; ``dataclasses.replace(config, match_thresh=0.7)`` gives a checked, modified copy.
Everything else is derived from these classes, so a new field is a new option everywhere: the command-line flags
of the tracking tools, the value types of sweep grids, and the YAML files of ``load_config`` / ``save_config``.

Defaults follow the ByteTrack and BoT-SORT papers' public code, except for a few deliberate differences, each with
an option that restores the reference (docs/trackers.md lists them with their reasons; ``Config.reference()`` or
``python -m trackers botsort --reference`` gives the reference rules). A starting file with every default:
``python -m trackers bytetrack > my_tracker.yaml``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import re
import tempfile
import textwrap
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from trackers.errors import TrackerError

#: camera-motion-compensation methods understood by ``trackers.gmc.GMC``.
CMC_METHODS: tuple[str, ...] = ("sparseOptFlow", "orb", "ecc", "none")

#: class ids the pedestrian-only output filter applies to: 5 is the pedestrian in the 1..7 numbering car, truck,
#: bus, trailer, pedestrian, motorcycle, bicycle. It matches ``yolox_finetune.core.classes.PEDESTRIAN_CLASS_IDS``
#: (tests/trackers/test_config.py checks that both agree); it is restated so this package stands alone.
PEDESTRIAN_CLASS_IDS: frozenset[int] = frozenset({5})


@dataclass(frozen=True)
class TrackerConfig:
    """Parameters shared by ByteTrack and BoT-SORT (thresholds are detection scores or 1 - IoU costs)."""

    #: the name of the tracker in tools and config files (``tracker: bytetrack``).
    tracker_name: ClassVar[str] = "tracker"
    #: options that are scores, 1 - IoU costs or weights, so they lie in [0, 1].
    unit_interval: ClassVar[tuple[str, ...]] = (
        "track_thresh", "low_thresh", "new_track_thresh", "match_thresh", "second_match_thresh",
        "unconfirmed_match_thresh", "duplicate_thresh",
    )
    #: options that take one of a few words: option -> the words.
    choices: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: the options that make the update rules those of the reference code (docs/trackers.md lists every
    #: difference); ``reference()`` applies them.
    reference_options: ClassVar[Mapping[str, Any]] = {
        "class_aware": False, "track_thresh_inclusive": False, "strict_removal": False, "report_unconfirmed": False,
        "iou_plus_one": True,
    }

    #: detections at or above this score take part in the first association.
    track_thresh: float = 0.5
    #: detections above this (and below ``track_thresh``) only rescue existing tracks in the second association.
    low_thresh: float = 0.1
    #: a new track starts only from an unmatched detection at or above this; none = ``track_thresh + 0.1``.
    new_track_thresh: float | None = None
    #: largest 1 - IoU cost accepted in the first association (0.8 = IoU of at least 0.2).
    match_thresh: float = 0.8
    #: frames a lost track is kept at 30 fps; scaled by the sequence frame rate.
    track_buffer: int = 30
    #: output boxes with an area (px^2) at or below this are not reported (the track itself lives on).
    min_box_area: float = 10.0
    #: output boxes wider than ``aspect_ratio_thresh * height`` are not reported; 0 = off. Applies only to
    #: ``aspect_ratio_class_ids`` (pedestrians) or to boxes whose class is unknown (class id < 1).
    aspect_ratio_thresh: float = 0.0
    #: class ids (1-based) the aspect-ratio filter applies to.
    aspect_ratio_class_ids: frozenset[int] = field(default_factory=lambda: PEDESTRIAN_CLASS_IDS)
    #: a track only takes detections of its own class.
    class_aware: bool = True
    #: multiply IoU similarity by detection score in the first association (ByteTrack/BoT-SORT on MOT17).
    fuse_score: bool = True
    #: 1 - IoU cost accepted in the second (low-score) association.
    second_match_thresh: float = 0.5
    #: 1 - IoU cost accepted when confirming a track that was born on the previous frame.
    unconfirmed_match_thresh: float = 0.7
    #: a lost and a tracked track closer than this 1 - IoU cost are duplicates: the one followed for fewer frames
    #: (last hit - first frame) is dropped; on a tie the lost one is kept.
    duplicate_thresh: float = 0.15
    #: a detection scoring exactly ``track_thresh`` is a high-score one; false: the reference code's rule, where
    #: high means above ``track_thresh`` and low means below it, so such a detection is ignored.
    track_thresh_inclusive: bool = True
    #: also report tracks born on this frame, before a second hit confirms them (the reference BoT-SORT does);
    #: false: confirmed tracks only, as ByteTrack and Ultralytics' BoT-SORT (a track seen once may be a false alarm).
    report_unconfirmed: bool = False
    #: a lost track is removed on the first frame past its buffer; false: the reference code's bookkeeping, which
    #: keeps it (and lets it be found again) one frame longer, and drops it at once when it is lost after that.
    strict_removal: bool = True
    #: IoU with boxes one pixel larger (width = x2 - x1 + 1), cython_bbox's convention in the reference code;
    #: false: IoU of the boxes as given, like Ultralytics and the evaluators (the +1 matters most for small boxes).
    iou_plus_one: bool = False

    def __post_init__(self) -> None:
        for spec in _value_types(type(self)).values():
            object.__setattr__(self, spec.name, self._checked_value(spec, getattr(self, spec.name)))
        self._check_ranges()

    def _checked_value(self, spec: OptionSpec, value: Any) -> Any:
        """``value`` in the option's type (int -> float, a list of ids -> frozenset), or TrackerError."""
        where = f"{self.tracker_name} option {spec.name}"
        if value is None:
            if spec.optional:
                return None
            raise TrackerError(f"{where} is empty (null); give it {spec.described} or leave it out for the default")
        if not _has_type(value, spec.kind):
            raise TrackerError(f"{where}={value!r} is not {spec.described}; pass e.g. {_example(self, spec.name)}")
        if spec.kind is float:
            value = float(value)
            if not math.isfinite(value):
                raise TrackerError(f"{where}={value} is not a finite number; pass e.g. {_example(self, spec.name)}")
        if spec.kind is frozenset:
            value = frozenset(value)
        if spec.choices and value not in spec.choices:
            raise TrackerError(f"{where}={value!r} is unknown; choose one of {', '.join(spec.choices)}")
        return value

    def _check_ranges(self) -> None:
        """Raise TrackerError naming the first option outside its range."""
        name = self.tracker_name
        for option in self.unit_interval:
            value = getattr(self, option)
            if value is not None and not 0.0 <= value <= 1.0:
                raise TrackerError(f"{name} option {option}={value} is outside [0, 1]; pass a value between 0 and 1")
        if self.low_thresh > self.track_thresh:
            raise TrackerError(
                f"{name} option low_thresh={self.low_thresh} is above track_thresh={self.track_thresh}; "
                "lower low_thresh or raise track_thresh"
            )
        if self.track_buffer < 0:
            raise TrackerError(f"{name} option track_buffer={self.track_buffer} is negative; pass 0 or more frames")
        if self.min_box_area < 0 or self.aspect_ratio_thresh < 0:
            raise TrackerError(f"{name} options min_box_area and aspect_ratio_thresh must be >= 0 (0 turns them off)")

    @classmethod
    def reference(cls, **overrides: Any) -> TrackerConfig:
        """Defaults with the reference code's update rules (``reference_options``), then ``overrides``."""
        return cls(**{**cls.reference_options, **overrides})

    @property
    def effective_new_track_thresh(self) -> float:
        """The new-track threshold actually used (``track_thresh + 0.1`` when not set)."""
        return self.track_thresh + 0.1 if self.new_track_thresh is None else self.new_track_thresh

    def buffer_frames(self, frame_rate: float) -> int:
        """Frames a lost track survives at ``frame_rate`` (``track_buffer`` is stated for 30 fps)."""
        return int(frame_rate / 30.0 * self.track_buffer)

    @property
    def needs_images(self) -> bool:
        """Whether the tracker looks at the frame pixels (ByteTrack never does)."""
        return False

    def without_images(self) -> TrackerConfig:
        """The config to run with when no frame images exist (the same, unless the tracker needs them)."""
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain values (JSON- and YAML-safe, class ids as a sorted list), in field order."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def option_names(cls) -> list[str]:
        """Names of all options, in field order."""
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class ByteTrackConfig(TrackerConfig):
    """ByteTrack: defaults of the paper's code (high 0.5, low 0.1, new track 0.6, match 0.8, 30-frame buffer)."""

    tracker_name: ClassVar[str] = "bytetrack"


@dataclass(frozen=True)
class BoTSORTConfig(TrackerConfig):
    """BoT-SORT: ByteTrack's scheme with an xywh Kalman state, camera-motion compensation and optional ReID."""

    tracker_name: ClassVar[str] = "botsort"
    unit_interval: ClassVar[tuple[str, ...]] = TrackerConfig.unit_interval + (
        "proximity_thresh", "appearance_thresh", "feature_momentum",
    )
    choices: ClassVar[Mapping[str, tuple[str, ...]]] = {"cmc": CMC_METHODS}
    reference_options: ClassVar[Mapping[str, Any]] = {**TrackerConfig.reference_options, "report_unconfirmed": True}

    track_thresh: float = 0.6
    new_track_thresh: float | None = 0.7
    #: camera motion compensation on the frame images: sparseOptFlow, orb, ecc or none.
    cmc: str = "sparseOptFlow"
    #: images are shrunk by this factor before motion estimation (speed; the warp is rescaled).
    cmc_downscale: int = 2
    #: with ReID: a pair farther apart than this 1 - IoU cost may not match on appearance.
    proximity_thresh: float = 0.5
    #: with ReID: appearance (cosine / 2) cost above this counts as "different object".
    appearance_thresh: float = 0.25
    #: with ReID: weight of the previous embedding in the track's running average.
    feature_momentum: float = 0.9

    def _check_ranges(self) -> None:
        super()._check_ranges()
        if self.cmc_downscale < 1:
            raise TrackerError(f"botsort option cmc_downscale={self.cmc_downscale} must be 1 or more (1 = full size)")

    @property
    def needs_images(self) -> bool:
        return self.cmc != "none"

    def without_images(self) -> BoTSORTConfig:
        return dataclasses.replace(self, cmc="none")


#: tracker name -> its config class: the names accepted everywhere (``make_tracker``, ``--tracker``, files).
TRACKER_CONFIGS: dict[str, type[TrackerConfig]] = {c.tracker_name: c for c in (ByteTrackConfig, BoTSORTConfig)}


def tracker_config_class(name: str) -> type[TrackerConfig]:
    """The config class of tracker ``name``; the one check of tracker names."""
    if name not in TRACKER_CONFIGS:
        raise TrackerError(f"unknown tracker {name!r}; choose one of {', '.join(TRACKER_CONFIGS)}")
    return TRACKER_CONFIGS[name]


def build_config(name: str, overrides: Mapping[str, Any] | None = None) -> TrackerConfig:
    """Defaults of tracker ``name`` with ``overrides`` applied (None values mean "keep the default", which suits
    argparse options left unset). Unknown names or options raise TrackerError listing the valid ones."""
    config_class = tracker_config_class(name)
    valid = config_class.option_names()
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise TrackerError(f"unknown {name} option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}")
    return config_class(**given)


# -- options as front ends see them -------------------------------------------------------------------------------

_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")
_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a word",
               frozenset: "a list of class ids"}


@dataclass(frozen=True)
class OptionSpec:
    """One tracker option: its value type (from the field's annotation), documentation and defaults."""

    name: str
    #: bool, int, float, str, or frozenset (a set of int class ids).
    kind: type
    #: None is a valid value (it means "derived from other options").
    optional: bool = False
    #: the words a str option accepts (None: any).
    choices: tuple[str, ...] | None = None
    #: the ``#:`` comment above the field.
    doc: str = ""
    #: tracker name -> its default, for every tracker that has this option.
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def described(self) -> str:
        """The type in words, for messages."""
        return _TYPE_WORDS[self.kind]

    @property
    def type_name(self) -> str:
        """Short type name: float, int, bool, str or ids."""
        return "ids" if self.kind is frozenset else self.kind.__name__

    def parse(self, text: str) -> Any:
        """The value of command-line text: ``none`` for an optional option, true/false (yes/no, on/off) for a
        switch, a comma list for class ids. Range checks happen when the config is built."""
        raw = text.strip()
        if self.optional and raw.lower() in ("none", "null"):
            return None
        try:
            if self.kind is bool:
                if raw.lower() not in _TRUE_WORDS + _FALSE_WORDS:
                    raise ValueError
                return raw.lower() in _TRUE_WORDS
            if self.kind is frozenset:
                return frozenset(int(part) for part in raw.split(",") if part.strip())
            value = self.kind(raw)
        except ValueError:
            hint = " or none" if self.optional else ""
            raise TrackerError(f"{self.name}: {text!r} is not a valid {self.type_name}; pass {self.described}{hint}"
                               ) from None
        if self.choices and value not in self.choices:
            raise TrackerError(f"{self.name}: {text!r} is unknown; choose one of {', '.join(self.choices)}")
        return value


def option_specs(names: Iterable[str] | None = None) -> dict[str, OptionSpec]:
    """Every option of the trackers ``names`` (default: all), in field order; an option several trackers share
    appears once, with each tracker's default."""
    specs: dict[str, OptionSpec] = {}
    for name in names if names is not None else TRACKER_CONFIGS:
        config_class = tracker_config_class(name)
        docs = _field_docs(config_class)
        defaults = config_class()
        for option, spec in _value_types(config_class).items():
            known = specs.get(option) or dataclasses.replace(spec, doc=docs.get(option, ""), defaults={})
            specs[option] = dataclasses.replace(known, defaults={**known.defaults, name: getattr(defaults, option)})
    return specs


@cache
def _value_types(config_class: type[TrackerConfig]) -> dict[str, OptionSpec]:
    """Name, type, optionality and choices of each field, read from the annotations (no docs or defaults)."""
    hints = typing.get_type_hints(config_class)
    specs = {}
    for f in fields(config_class):
        kind, optional = _unwrap(hints[f.name])
        specs[f.name] = OptionSpec(f.name, kind, optional, config_class.choices.get(f.name))
    return specs


def _unwrap(annotation: Any) -> tuple[type, bool]:
    """(kind, optional) of ``float``, ``float | None``, ``frozenset[int]`` and the like."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = type(None) in typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if optional:
        return _unwrap(args[0])[0], True
    if origin is frozenset:
        return frozenset, False
    if annotation not in _TYPE_WORDS:
        raise TypeError(f"tracker option type {annotation!r} is not supported; use bool, int, float, str, "
                        "an Optional of those, or frozenset[int]")
    return annotation, False


@cache
def _field_docs(config_class: type[TrackerConfig]) -> dict[str, str]:
    """Field name -> its ``#:`` comment, from the source of the class and its bases (a subclass that restates a
    default without a comment keeps the base's text). Empty when the source is not available."""
    docs: dict[str, str] = {}
    for klass in reversed(config_class.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        comment: list[str] = []
        for line in lines:
            text = line.strip()
            if text.startswith("#:"):
                comment.append(text[2:].strip())
                continue
            declared = re.match(r"(\w+)\s*:", text)
            if declared and comment:
                docs[declared.group(1)] = " ".join(comment)
            comment = []
    return docs


def _has_type(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is frozenset:
        return isinstance(value, (list, tuple, set, frozenset)) and all(_has_type(v, int) for v in value)
    if kind in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def _example(config: TrackerConfig, option: str) -> str:
    """The option's default, as an example of a valid value."""
    return format_value(getattr(type(config)(), option))


def _plain(value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset) else value


def format_value(value: Any) -> str:
    """An option value as a user types it on the command line (none, true, 0.5, 5,6)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, frozenset):
        return ",".join(str(v) for v in sorted(value))
    return str(value)


# -- YAML files ---------------------------------------------------------------------------------------------------

def load_config(path: str | os.PathLike) -> dict[str, TrackerConfig]:
    """Tracker configs from a YAML file holding either one tracker's options with a ``tracker:`` key, or a mapping
    tracker name -> options. Options left out keep their defaults. A bad file, an unknown tracker or option, or a
    bad value raises TrackerError naming the file and the key."""
    import yaml

    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrackerError(f"tracker config {path} cannot be read ({exc.strerror}); check the path") from None
    except UnicodeDecodeError as exc:
        raise TrackerError(f"{path}: not a UTF-8 text file (byte {exc.start} cannot be decoded); pass a YAML file "
                           "such as one a tracking run wrote (tracker_config.yaml)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TrackerError(f"{where}: not valid YAML ({problem}); fix the file") from None
    if not isinstance(document, dict):
        raise TrackerError(f"{path}: expected tracker options (e.g. 'tracker: bytetrack' and 'option: value' lines); "
                           "start from a file a tracking run wrote, or from python -m trackers bytetrack")
    if "tracker" in document:
        options = dict(document)
        sections = {str(options.pop("tracker")): options}
    else:
        sections = document
    configs = {}
    for name, options in sections.items():
        if name not in TRACKER_CONFIGS and any(name in c.option_names() for c in TRACKER_CONFIGS.values()):
            raise TrackerError(f"{path}: option {name!r} needs a tracker: add a line 'tracker: bytetrack' (or "
                               "botsort), or nest the options under the tracker's name")
        try:
            configs[name] = _config_from_mapping(name, {} if options is None else options)
        except TrackerError as exc:
            raise TrackerError(f"{path}: {exc}") from None
    return configs


def _config_from_mapping(name: str, options: object) -> TrackerConfig:
    """Config of tracker ``name`` from a file's ``option: value`` mapping (null is a value here, unlike in
    ``build_config``: it is what a saved ``new_track_thresh: null`` means)."""
    config_class = tracker_config_class(name)
    if not isinstance(options, dict):
        raise TrackerError(f"the entry of {name} must hold 'option: value' lines, not {options!r}")
    unknown = [key for key in options if key not in config_class.option_names()]
    if unknown:
        raise TrackerError(f"unknown {name} option {unknown[0]!r}; valid options: "
                           f"{', '.join(config_class.option_names())}")
    return config_class(**options)


def config_yaml(configs: TrackerConfig | Mapping[str, TrackerConfig]) -> str:
    """YAML text of one config (with a ``tracker:`` key) or of several (one entry per tracker name), every option
    written out with its documentation as a comment; ``load_config`` reads it back to equal configs."""
    lines = ["# Tracker options (documented in trackers/config.py). Pass this file to a tracking tool with",
             "# --tracker-config FILE to rerun with these settings; flags given as well override it."]
    if isinstance(configs, TrackerConfig):
        lines += [f"tracker: {configs.tracker_name}", *_option_lines(configs, "")]
    else:
        for name, config in configs.items():
            if name != config.tracker_name:
                raise ValueError(f"config_yaml: entry {name!r} holds a {type(config).__name__}")
            lines += [f"{name}:", *_option_lines(config, "  ")]
    return "\n".join(lines) + "\n"


def save_config(configs: TrackerConfig | Mapping[str, TrackerConfig], path: str | os.PathLike) -> Path:
    """Write ``config_yaml(configs)`` to ``path`` atomically (a reader never sees half a file); returns the path.
    The file gets the mode a plain ``open`` gives under the user's umask, not the temp file's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(config_yaml(configs))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's umask (read without changing it where /proc allows, so other threads never see it move;
    ``yolox_finetune.core.atomic_io.current_umask`` does the same, but this package imports nothing of ours)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _option_lines(config: TrackerConfig, indent: str) -> list[str]:
    import yaml

    docs = _field_docs(type(config))
    lines = []
    for name, value in config.to_dict().items():
        for text in textwrap.wrap(docs.get(name, ""), width=110):
            lines.append(f"{indent}# {text}")
        text = yaml.safe_dump(value, default_flow_style=True, width=1_000_000).removesuffix("...\n")  # end mark
        lines.append(f"{indent}{name}: {text.strip()}")
    return lines
