"""Tracker tuning with Optuna on cached detections: the library behind ``tools/tune_trackers.py``.

A grid (``conf_sweep --grid``) grows as the product of its axes; a sampler spends the same budget where the metric
is good. One objective uses Optuna's TPE sampler, several use NSGA-II (a Pareto front, e.g. MOTA against IDSW).
Every trial builds a real tracker config from the sampled options, runs the tracker over every sequence of the
tuning split and scores it with the project's evaluator, so the numbers are those ``track_eval`` reports for the
same config (the tests check this through the tool).

- Search space: one range per option in :data:`SEARCH_RANGES` (the one place that holds them) and a default set
  of searched options per tracker in :data:`DEFAULT_SEARCH`; ``--search``/``--param`` change both. Options with an
  order (``low_thresh <= track_thresh <= new_track_thresh``) are sampled in field order with the range clamped by
  the value already drawn (constrained sampling); a config the tracker's dataclass still rejects is pruned with the
  reason kept in the trial (``rejected``), never a crash.
- Storage: any Optuna RDB URL; the tool's default is ``sqlite:///<out>/study.db``, so a second run adds trials to
  the same study. ``workers`` processes on one machine share that storage (Optuna's own mechanism).
- A study remembers what its numbers mean (tracker, objectives, detections, ground truth, conf filter, IoU); a
  resume with other settings is refused instead of mixing incomparable trials.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import math
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from tabulate import tabulate

from trackers.config import TRACKER_CONFIGS, OptionSpec, TrackerConfig, format_value, option_specs, save_config
from trackers.errors import TrackerError
from yolox_finetune.core.atomic_io import atomic_open, atomic_write_json, atomic_write_text, umask_mode
from yolox_finetune.core.errors import UserError
from yolox_finetune.mot.clear import LOWER_IS_BETTER, METRIC_NAMES
from yolox_finetune.mot.evaluate import TrackerCounts, evaluate_sequence
from yolox_finetune.mot.runner import Sequence as MotSequence
from yolox_finetune.mot.runner import run_tracker

#: file names in the output folder.
STUDY_DB = "study.db"
TRIALS_CSV = "trials.csv"
BEST_CONFIG = "best_config.yaml"
SUMMARY_MD = "summary.md"
SUMMARY_JSON = "tune.json"
PARETO_PNG = "pareto_front.png"
HISTORY_PNG = "history.png"
PARETO_DIR = "pareto"
#: files SQLite may leave beside the database (journals of an interrupted write); they belong to the study.
SQLITE_SIDE_FILES = tuple(STUDY_DB + suffix for suffix in ("-journal", "-wal", "-shm"))
#: metrics shown beside the objectives in the summary.
SUMMARY_METRICS: tuple[str, ...] = ("HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN")


# -- search space --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SearchParam:
    """The values one tracker option may take in a study: a float or int range, or a list of choices."""

    name: str
    #: "float", "int" or "categorical".
    kind: str
    low: float | None = None
    high: float | None = None
    #: grid step of a range (None: continuous floats, step 1 for ints).
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        """As a user writes it after ``--param NAME=``."""
        if self.kind == "categorical":
            return ",".join(format_value(c) for c in self.choices)
        text = f"{format_value(self.low)}:{format_value(self.high)}"
        return text + (f":{format_value(self.step)}" if self.step is not None else "")

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        return value is not None and not isinstance(value, bool) and self.low <= value <= self.high

    def suggest(self, trial: Any, low: float | None = None, high: float | None = None) -> Any:
        """Draw the value from ``trial`` (an optuna.Trial), within [low, high] when the range is clamped."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        low = self.low if low is None else low
        high = self.high if high is None else high
        if self.kind == "int":
            step = int(self.step or 1)
            low = int(self.low + math.ceil((low - self.low) / step) * step)
            return trial.suggest_int(self.name, low, max(low, int(math.floor(high))), step=step)
        if self.step is not None:  # stay on the grid of the full range when a bound was clamped
            low = self.low + math.ceil(round((low - self.low) / self.step, 9)) * self.step
            high = max(low, self.low + math.floor(round((high - self.low) / self.step, 9)) * self.step)
            return trial.suggest_float(self.name, round(low, 9), round(high, 9), step=self.step)
        return trial.suggest_float(self.name, low, high)


def _range(name: str, low: float, high: float, kind: str = "float") -> SearchParam:
    return SearchParam(name, kind, low, high)


#: the default range of every option a study may search (tracker name -> option -> range; "*" holds the ranges
#: both trackers share). Bool options and options with a fixed set of words search all their values unless listed.
SEARCH_RANGES: dict[str, dict[str, SearchParam]] = {
    "*": {
        "track_thresh": _range("track_thresh", 0.3, 0.8),
        "low_thresh": _range("low_thresh", 0.1, 0.3),  # below the default --conf 0.1 the pre-filter decides
        "new_track_thresh": _range("new_track_thresh", 0.3, 0.9),  # and at least track_thresh: ORDER_RULES
        "match_thresh": _range("match_thresh", 0.6, 0.95),
        "second_match_thresh": _range("second_match_thresh", 0.3, 0.8),
        "unconfirmed_match_thresh": _range("unconfirmed_match_thresh", 0.5, 0.9),
        "duplicate_thresh": _range("duplicate_thresh", 0.05, 0.3),
        "track_buffer": _range("track_buffer", 10, 120, "int"),  # frames at 30 fps: 2 Hz keyframes keep 1/15
        "min_box_area": _range("min_box_area", 0.0, 100.0),
        "aspect_ratio_thresh": _range("aspect_ratio_thresh", 0.0, 3.0),
    },
    "bytetrack": {},
    "botsort": {
        "track_thresh": _range("track_thresh", 0.4, 0.8),
        "cmc_downscale": _range("cmc_downscale", 1, 4, "int"),
        "proximity_thresh": _range("proximity_thresh", 0.3, 0.7),
        "appearance_thresh": _range("appearance_thresh", 0.1, 0.4),
        "feature_momentum": _range("feature_momentum", 0.8, 0.95),
    },
}

#: options searched when ``--search`` is not given. BoT-SORT's camera-motion compensation stays as configured: on
#: frames it costs an optical-flow pass per frame and trial (``--param cmc=sparseOptFlow,none`` adds it).
DEFAULT_SEARCH: dict[str, tuple[str, ...]] = {
    "bytetrack": ("track_thresh", "low_thresh", "new_track_thresh", "match_thresh", "second_match_thresh",
                  "track_buffer", "fuse_score"),
    "botsort": ("track_thresh", "low_thresh", "new_track_thresh", "match_thresh", "second_match_thresh",
                "track_buffer", "fuse_score"),
}

#: (option, relation, other option): the order sampling keeps by clamping the option's range to the other's value.
ORDER_RULES: tuple[tuple[str, str, str], ...] = (
    ("low_thresh", "<=", "track_thresh"),
    ("new_track_thresh", ">=", "track_thresh"),
)


def default_range(tracker: str, name: str) -> SearchParam | None:
    """The default range of option ``name`` for ``tracker`` (None: the option needs ``--param NAME=...``)."""
    spec = option_specs([tracker])[name]
    found = SEARCH_RANGES.get(tracker, {}).get(name) or SEARCH_RANGES["*"].get(name)
    if found is not None:
        return found
    if spec.kind is bool:
        return SearchParam(name, "categorical", choices=(True, False))
    if spec.choices:
        return SearchParam(name, "categorical", choices=tuple(spec.choices))
    return None


def parse_param(text: str, specs: Mapping[str, OptionSpec],
                tracker: str = "this tracker") -> tuple[str, SearchParam | None, Any]:
    """``NAME=LOW:HIGH[:STEP]`` (a range), ``NAME=A,B,C`` (choices) or ``NAME=VALUE`` (fixed, not searched) ->
    (name, range or None, fixed value). Values are read by the option's type in ``trackers/config.py``."""
    if "=" not in text:
        raise UserError(f"--param {text!r} is not NAME=LOW:HIGH, NAME=A,B or NAME=VALUE (e.g. match_thresh=0.6:0.95)")
    name, value = (part.strip() for part in text.split("=", 1))
    name = name.replace("-", "_")
    if name not in specs:
        raise UserError(f"--param {name}: not an option of {tracker}; options: {', '.join(specs)}")
    spec = specs[name]
    if spec.kind is frozenset:
        raise UserError(f"--param {name}: a set of class ids cannot be searched; set it with --tracker-config")
    try:
        if ":" in value:
            if spec.kind not in (int, float):
                raise UserError(f"--param {name}={value}: a range needs a numeric option; list the values: "
                                f"{name}=A,B")
            parts = [spec.parse(p) for p in value.split(":")]
            if len(parts) not in (2, 3) or None in parts or parts[0] > parts[1] or (len(parts) == 3 and parts[2] <= 0):
                raise UserError(f"--param {name}={value}: write LOW:HIGH or LOW:HIGH:STEP with LOW <= HIGH, STEP > 0")
            kind = "int" if spec.kind is int else "float"
            return name, SearchParam(name, kind, parts[0], parts[1], parts[2] if len(parts) == 3 else None), None
        values = [spec.parse(p) for p in value.split(",") if p.strip()]
    except TrackerError as exc:
        raise UserError(f"--param {exc}") from None
    if not values:
        raise UserError(f"--param {name}: give a value, a range LOW:HIGH or a list A,B")
    if len(values) == 1:
        return name, None, values[0]
    return name, SearchParam(name, "categorical", choices=tuple(dict.fromkeys(values))), None


def search_space(tracker: str, search: Sequence[str] | None, params: Sequence[str],
                 fixed_by_flags: Sequence[str] = ()) -> tuple[dict[str, SearchParam], dict[str, Any], list[str]]:
    """(searched option -> range, option -> fixed value, notes) of a study of ``tracker``.

    ``search`` names the searched options (default :data:`DEFAULT_SEARCH`), each with its default range;
    ``params`` (``--param`` texts) set ranges (adding the option), or fix an option to one value; options given
    as tracker flags (``fixed_by_flags``) keep the flag's value and leave the search."""
    specs = {name: spec for name, spec in option_specs([tracker]).items()}
    names = list(dict.fromkeys(n.replace("-", "_") for n in (search if search else DEFAULT_SEARCH[tracker])))
    space: dict[str, SearchParam] = {}
    given = {}
    for text in params:
        name, param, value = parse_param(text, specs, tracker)
        given[name] = (param, value)
    for name in names:
        if name not in specs:
            raise UserError(f"--search {name}: not an option of {tracker}; options: {', '.join(specs)}")
        if name in given:
            continue
        found = default_range(tracker, name)
        if found is None:
            raise UserError(f"--search {name}: no default range for this option; give one with --param {name}=LOW:HIGH")
        space[name] = found
    fixed: dict[str, Any] = {}
    for name, (param, value) in given.items():
        if param is None:
            fixed[name] = value
        else:
            space[name] = param
    notes = []
    for name in fixed_by_flags:
        if name in space:
            del space[name]
            notes.append(f"{name} is fixed by --{name.replace('_', '-')}, so it is not searched")
    order = {name: i for i, name in enumerate(specs)}
    space = dict(sorted(space.items(), key=lambda item: order[item[0]]))  # field order: anchors come first
    if not space:
        raise UserError(f"nothing to search for {tracker}: every option is fixed; drop a flag or add --param "
                        "NAME=LOW:HIGH")
    return space, fixed, notes


class RejectedConfig(Exception):
    """A sampled config that cannot run; the trial is pruned with this reason."""


def sample_config(trial: Any, base: TrackerConfig, space: Mapping[str, SearchParam]) -> TrackerConfig:
    """The config of one trial: ``base`` with every searched option drawn from ``trial``, in field order, ranges
    clamped by :data:`ORDER_RULES`. Raises RejectedConfig when no value fits or the dataclass rejects the result."""
    values: dict[str, Any] = {}
    for name, param in space.items():
        low, high = param.low, param.high
        for option, relation, other in ORDER_RULES:
            if option != name or param.kind == "categorical" or other not in base.option_names():
                continue
            anchor = values.get(other, getattr(base, other))
            if anchor is None:
                continue
            if relation == "<=":
                high = min(high, anchor)
            else:
                low = max(low, anchor)
            if low > high:
                raise RejectedConfig(f"{name} in {param.describe()} cannot be {relation} {other}={anchor:g}; "
                                     f"widen --param {name}")
        values[name] = param.suggest(trial, low, high)
    try:
        return dataclasses.replace(base, **values)
    except TrackerError as exc:
        raise RejectedConfig(str(exc)) from None


def baseline_params(base: TrackerConfig, space: Mapping[str, SearchParam]) -> dict[str, Any]:
    """The searched options' values in ``base`` (those inside their range): trial 0 of a new study runs them, so
    the tuned config is never worse than the starting one on the tuning split."""
    params = {}
    for name, param in space.items():
        value = getattr(base, name)
        if name == "new_track_thresh" and value is None:
            value = base.effective_new_track_thresh
        if param.contains(value):
            params[name] = value
    return params


# -- objectives ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Objective:
    """A metric and the direction it is optimised in."""

    metric: str
    #: "maximize" or "minimize" (Optuna's words).
    direction: str

    @property
    def token(self) -> str:
        """``MOTA`` (maximised) or ``-IDSW`` (minimised), as ``--objective`` takes it."""
        return ("-" if self.direction == "minimize" else "") + self.metric

    @property
    def label(self) -> str:
        """``max MOTA`` or ``min IDSW``: the column of the objective in tables and trials.csv."""
        return ("min " if self.direction == "minimize" else "max ") + self.metric

    @property
    def better(self) -> str:
        return "lower is better" if self.direction == "minimize" else "higher is better"


def parse_objectives(tokens: Sequence[str]) -> list[Objective]:
    """``HOTA``, ``-IDSW`` (minimise), ``+MOTA`` (maximise), comma lists allowed; a bare name takes the metric's
    own direction (IDSW, FP, FN, ML, Frag are minimised, the rest maximised). Names as in ``metrics.json``, any
    case. Default: HOTA."""
    canonical = {name.lower(): name for name in METRIC_NAMES}
    objectives = []
    for token in [t.strip() for text in (tokens or ["HOTA"]) for t in text.split(",") if t.strip()]:
        sign, name = (token[0], token[1:]) if token[0] in "+-" else ("", token)
        metric = canonical.get(name.lower())
        if metric is None:
            raise UserError(f"--objective {token}: unknown metric {name!r}; choose from {', '.join(METRIC_NAMES)} "
                            "(a leading - minimises, + maximises)")
        if sign == "-":
            direction = "minimize"
        elif sign == "+":
            direction = "maximize"
        else:
            direction = "minimize" if metric in LOWER_IS_BETTER else "maximize"
        objective = Objective(metric, direction)
        if any(o.metric == metric for o in objectives):
            raise UserError(f"--objective names {metric} twice; give each metric once")
        objectives.append(objective)
    return objectives


# -- evaluation ----------------------------------------------------------------------------------------------------

def evaluate_config(sequences: Sequence[MotSequence], tracker: str, config: TrackerConfig, conf: float,
                    iou_threshold: float = 0.5) -> dict[str, Any]:
    """Overall metrics of ``config`` over ``sequences``: what ``track_eval`` reports for it (``metrics.json``'s
    ``overall``), computed the same way (runner, then the class-aware evaluator)."""
    counts = TrackerCounts()
    for seq in sequences:
        results = run_tracker(tracker, config, seq.detections, seq.num_frames, seq.frame_rate, conf, seq.images,
                              seq.image_size)
        counts.add_sequence(seq.name, evaluate_sequence(seq.gt, results, iou_threshold,
                                                         scored_frames=seq.scored_frames))
    return counts.report()["overall"]


# -- the study -----------------------------------------------------------------------------------------------------

@dataclass
class TuneSetup:
    """Everything a worker needs to run trials of one study (picklable: workers are spawned processes)."""

    tracker: str
    #: the config every trial starts from (the tracker's defaults, --tracker-config, flags, fixed --param values).
    base: TrackerConfig
    space: dict[str, SearchParam]
    objectives: list[Objective]
    conf: float
    iou_threshold: float
    storage: str
    study_name: str
    #: what the numbers mean; a study built with other settings is not resumed with these.
    settings: dict[str, Any]
    seed: int | None = 0
    #: NSGA-II's generation size (several objectives only; None: from the trial budget).
    population: int | None = None


def sqlite_url(path: str | os.PathLike) -> str:
    """The Optuna storage URL of an SQLite file."""
    return f"sqlite:///{Path(path).resolve()}"


def shown_url(url: str) -> str:
    """``url`` without its password, for files and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _sqlite_connector(path: str) -> Any:
    """Connections to the SQLite file ``path`` in write-ahead-log mode with NORMAL sync: a trial makes about 15
    small commits, and with the default journal each waits for the disk (15 ms on a busy one, half the time of a
    trial); WAL keeps the file consistent after a crash, at worst losing the last trials of a power cut. Locks
    are waited for up to a minute, so worker processes can share the file."""

    def connect() -> Any:
        import sqlite3

        connection = sqlite3.connect(path, timeout=60)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    return connect


def open_storage(url: str) -> Any:
    """An Optuna RDB storage for ``url``; a bad URL, a missing database driver or an unreachable server is one
    UserError. SQLite waits up to a minute for a lock, so several worker processes can share one file."""
    import optuna
    import sqlalchemy.exc

    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        engine_kwargs["creator"] = _sqlite_connector(url[len("sqlite:///"):])
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except ImportError as exc:
        raise UserError(f"--storage {shown_url(url)}: its database driver is not installed ({exc.name or exc}); "
                        "install it (e.g. pip install psycopg2-binary for postgresql)") from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--storage {shown_url(url)} cannot be opened ({reason}); pass an Optuna RDB URL such as "
                        "sqlite:///path/study.db or postgresql://user@host/db") from None


def _sampler(setup: TuneSetup, worker: int, population: int) -> Any:
    import optuna

    seed = None if setup.seed is None else setup.seed + worker
    if len(setup.objectives) == 1:
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)


def load_study(setup: TuneSetup, worker: int = 0, population: int | None = None) -> Any:
    """The study of ``setup`` in its storage, created when missing (recording the settings, NSGA-II's generation
    size and a first trial with the base config's values); a study made with other settings is refused."""
    import optuna

    storage = open_storage(setup.storage)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if setup.study_name in existing:
        recorded = existing[setup.study_name].user_attrs.get("settings")
        if recorded != setup.settings:
            differ = [k for k in sorted(set(setup.settings) | set(recorded or {}))
                      if (recorded or {}).get(k) != setup.settings.get(k)]
            raise UserError(f"study {setup.study_name!r} in {shown_url(setup.storage)} was tuned with other settings "
                            f"({', '.join(differ)} differ: e.g. {differ[0]} was {(recorded or {}).get(differ[0])!r}); "
                            "its trials cannot be compared with these: pass --study-name NEW (same storage) or "
                            "another --out")
        population = existing[setup.study_name].user_attrs.get("population") or population
    study = optuna.create_study(storage=storage, study_name=setup.study_name, load_if_exists=True,
                                directions=[o.direction for o in setup.objectives],
                                sampler=_sampler(setup, worker, population or 2))
    if setup.study_name not in existing:
        study.set_user_attr("settings", setup.settings)
        study.set_user_attr("population", population)
        study.set_user_attr("objectives", [o.token for o in setup.objectives])
        study.enqueue_trial(baseline_params(setup.base, setup.space), user_attrs={"baseline": True})
    return study


def make_objective(setup: TuneSetup, sequences: Sequence[MotSequence]) -> Any:
    """The Optuna objective: sample a config, track, score; a config that cannot run is pruned with its reason."""
    import optuna

    def objective(trial: Any) -> float | list[float]:
        try:
            config = sample_config(trial, setup.base, setup.space)
        except RejectedConfig as exc:
            trial.set_user_attr("rejected", str(exc))
            logger.info(f"trial {trial.number}: pruned, {exc}")
            raise optuna.TrialPruned(str(exc)) from None
        start = time.perf_counter()
        metrics = evaluate_config(sequences, setup.tracker, config, setup.conf, setup.iou_threshold)
        trial.set_user_attr("result", {"config": config.to_dict(), "metrics": metrics,
                                        "seconds": round(time.perf_counter() - start, 3)})  # one commit, not three
        values = [metrics[o.metric] for o in setup.objectives]
        undefined = [o.metric for o, v in zip(setup.objectives, values) if v is None]
        if undefined:
            reason = f"{', '.join(undefined)} undefined on these sequences (no ground truth or no tracks)"
            trial.set_user_attr("rejected", reason)
            raise optuna.TrialPruned(reason)
        shown = ", ".join(f"{o.metric} {v:.4g}" for o, v in zip(setup.objectives, values))
        logger.info(f"trial {trial.number}: {shown}")
        return values[0] if len(values) == 1 else values

    return objective


def default_population(trials: int) -> int:
    """NSGA-II's generation size for a budget: about five generations, between 4 and 50 (Optuna's default)."""
    return max(4, min(50, trials // 5))


def _worker(setup: TuneSetup, sequences: list[MotSequence], trials: int, worker: int) -> None:
    """One process of a ``workers`` run: load the shared study, run its share of the trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = load_study(setup, worker)
    try:
        study.optimize(make_objective(setup, sequences), n_trials=trials)
    except KeyboardInterrupt:
        pass


def _ran(study: Any) -> int:
    """Trials that ran or run (an enqueued trial waits until a run picks it up)."""
    import optuna

    waiting = optuna.trial.TrialState.WAITING
    return sum(t.state != waiting for t in study.get_trials(deepcopy=False))


def run_study(setup: TuneSetup, sequences: list[MotSequence], trials: int, workers: int = 1) -> tuple[Any, int]:
    """Add ``trials`` trials (finished or pruned) to the study with ``workers`` processes sharing its storage;
    returns the study and how many trials this call added. Ctrl-C stops the trials and keeps what finished."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    population = setup.population or default_population(trials)
    study = load_study(setup, 0, population)  # created here once, before any worker races to create it
    before = _ran(study)
    if trials <= 0:
        return study, 0
    try:
        if workers <= 1:
            study.optimize(make_objective(setup, sequences), n_trials=trials)
        else:
            context = multiprocessing.get_context("spawn")
            shares = [trials // workers + (1 if i < trials % workers else 0) for i in range(workers)]
            processes = [context.Process(target=_worker, args=(setup, sequences, share, index))
                         for index, share in enumerate(shares) if share]
            for process in processes:
                process.start()
            for process in processes:
                process.join()
            failed = [p.exitcode for p in processes if p.exitcode]
            if failed:
                logger.warning(f"{len(failed)} worker process(es) ended with an error (exit {failed[0]}); "
                               "the trials they finished are kept")
    except KeyboardInterrupt:
        logger.warning("interrupted: writing what the finished trials found")
    return study, _ran(study) - before


# -- results -------------------------------------------------------------------------------------------------------

def finished_trials(study: Any) -> list[Any]:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def pareto_numbers(study: Any) -> set[int]:
    """Numbers of the trials on the Pareto front (for one objective: the best trial)."""
    if not finished_trials(study):
        return set()
    return {t.number for t in study.best_trials}


def pick_best(study: Any, objectives: Sequence[Objective]) -> Any:
    """The trial written as ``best_config.yaml``: the best trial for one objective; for several, the Pareto trial
    best on the first objective (ties broken by the next ones, then the lower trial number)."""
    front = study.best_trials
    if not front:
        raise UserError(f"study {study.study_name!r} has no finished trial yet; run more --trials")

    def key(trial: Any) -> tuple:
        return tuple(-v if o.direction == "maximize" else v for o, v in zip(objectives, trial.values)) + (
            trial.number,)

    return min(front, key=key)


def trial_rows(study: Any, objectives: Sequence[Objective]) -> list[dict[str, Any]]:
    """One flat dict per trial: number, state, objective values, searched options, every metric, pareto flag."""
    trials = study.get_trials(deepcopy=False)
    front = pareto_numbers(study)
    names = list(dict.fromkeys(name for t in trials for name in t.params))
    rows = []
    for trial in trials:
        result = trial.user_attrs.get("result") or {}
        metrics = result.get("metrics") or {}
        row: dict[str, Any] = {"trial": trial.number, "state": trial.state.name.lower()}
        for index, objective in enumerate(objectives):
            row[objective.label] = trial.values[index] if trial.values else None
        row.update({name: trial.params.get(name) for name in names})
        row.update({metric: metrics.get(metric) for metric in METRIC_NAMES})
        row["pareto"] = trial.number in front
        row["baseline"] = bool(trial.user_attrs.get("baseline"))
        row["seconds"] = result.get("seconds")
        row["rejected"] = trial.user_attrs.get("rejected", "")
        rows.append(row)
    return rows


def config_of(tracker: str, trial: Any) -> TrackerConfig:
    """The full config a trial ran with (as saved in the trial)."""
    return TRACKER_CONFIGS[tracker](**trial.user_attrs["result"]["config"])


def save_tracker_config(config: TrackerConfig, path: Path) -> Path:
    """``trackers.config.save_config`` with the mode a plain ``open`` gives under the umask (its temporary file is
    0600), so colleagues can read the tuned config as they read the rest of the folder."""
    save_config(config, path)
    os.chmod(path, umask_mode(0o666))
    return path


def write_trials_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["trial"])
        writer.writeheader()
        writer.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    _pyplot().close(fig)
    return path


def plot_pareto(rows: list[dict[str, Any]], objectives: Sequence[Objective], best: int, path: Path) -> Path:
    """Every finished trial in objective space, one panel per pair of objectives; the Pareto front in red, the
    trial written as best_config.yaml starred."""
    plt = _pyplot()
    done = [r for r in rows if r["state"] == "complete"]
    pairs = list(itertools.combinations(range(len(objectives)), 2))
    fig, axes = plt.subplots(1, len(pairs), figsize=(6 * len(pairs), 4.8), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        x, y = objectives[i], objectives[j]
        ax.scatter([r[x.label] for r in done], [r[y.label] for r in done], s=14, color="0.65", label="trials")
        front = sorted((r[x.label], r[y.label]) for r in done if r["pareto"])
        if front:
            xs, ys = zip(*front)
            ax.plot(xs, ys, color="tab:red", marker="o", markersize=5, linewidth=1,
                    drawstyle="steps-post" if len(objectives) == 2 else "default", label="Pareto front")
        for r in done:
            if r["trial"] == best:
                ax.plot([r[x.label]], [r[y.label]], marker="*", markersize=16, color="gold", markeredgecolor="black",
                        linestyle="none", label=f"best_config.yaml (trial {best})")
        ax.set_xlabel(f"{x.metric} ({x.better})")
        ax.set_ylabel(f"{y.metric} ({y.better})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Pareto front of {len(done)} finished trials")
    fig.tight_layout()
    return _save(fig, path)


def plot_parameters(rows: list[dict[str, Any]], objective: Objective, params: Sequence[str], best: int,
                    path: Path) -> Path:
    """The objective against each searched option, one panel per option, points coloured by trial number (where
    the sampler went over time), the best trial starred."""
    plt = _pyplot()
    done = [r for r in rows if r["state"] == "complete" and r[objective.label] is not None]
    columns = min(3, max(1, len(params)))
    lines = math.ceil(len(params) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.6 * columns, 3.6 * lines), squeeze=False)
    numbers = [r["trial"] for r in done] or [0]
    scatter = None
    for ax, name in zip(axes.flat, params):
        points = [(r[name], r[objective.label], r["trial"]) for r in done if r.get(name) is not None]
        if not points:
            ax.set_visible(False)
            continue
        values = [p[0] for p in points]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            xs, ticks = values, None
        else:
            ticks = sorted({format_value(v) for v in values})
            xs = [ticks.index(format_value(v)) for v in values]
        scatter = ax.scatter(xs, [p[1] for p in points], c=[p[2] for p in points], cmap="viridis", s=16,
                             vmin=min(numbers), vmax=max(numbers))
        for x, p in zip(xs, points):
            if p[2] == best:
                ax.plot([x], [p[1]], marker="*", markersize=15, color="gold", markeredgecolor="black")
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks)
        ax.set_xlabel(name)
        ax.set_ylabel(objective.metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(params):]:
        ax.set_visible(False)
    if scatter is not None:
        fig.colorbar(scatter, ax=axes, label="trial number", shrink=0.8)
    fig.suptitle(f"{objective.metric} ({objective.better}) against each searched option; best trial {best} starred")
    return _save(fig, path)


def plot_history(rows: list[dict[str, Any]], objectives: Sequence[Objective], path: Path) -> Path:
    """Each objective against the trial number, with the best value so far."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(objectives), figsize=(6 * len(objectives), 4), squeeze=False)
    for ax, objective in zip(axes[0], objectives):
        points = [(r["trial"], r[objective.label]) for r in rows
                  if r["state"] == "complete" and r[objective.label] is not None]
        if points:
            xs, ys = zip(*points)
            ax.scatter(xs, ys, s=12, color="tab:blue", label="trial")
            pick = min if objective.direction == "minimize" else max
            ax.plot(xs, list(itertools.accumulate(ys, pick)), color="tab:red", drawstyle="steps-post",
                    label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(f"{objective.metric} ({objective.better})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _metric_cells(metrics: Mapping[str, Any] | None, names: Sequence[str]) -> list[Any]:
    if metrics is None:
        return ["-"] * len(names)
    return ["-" if metrics.get(m) is None else (round(metrics[m], 2) if isinstance(metrics[m], float) else metrics[m])
            for m in names]


def summary_markdown(document: dict[str, Any]) -> str:
    """summary.md: what was tuned, the best config, baseline vs tuned on the tuning and the held-out split."""
    objectives = document["objectives"]
    metrics = list(dict.fromkeys([o.lstrip("-") for o in objectives] + list(SUMMARY_METRICS)))
    counts = document["trials"]
    text = io.StringIO()
    text.write(f"# Tracker tuning: {document['tracker']}\n\n")
    text.write(f"- objective{'s' if len(objectives) > 1 else ''}: {', '.join(document['objective_text'])} "
               f"({document['sampler']} sampler)\n")
    text.write(f"- study `{document['study']}` in `{document['storage']}`: {counts['complete']} finished, "
               f"{counts['pruned']} pruned, {counts['fail']} failed, {counts['running']} running; "
               f"{counts['added']} added by this run\n")
    text.write(f"- tuned on `{document['tune']['gt']}` ({document['tune']['sequences']} sequences), "
               f"conf filter {document['conf']}, IoU {document['iou_threshold']}\n")
    held = document.get("eval")
    text.write(f"- held-out: `{held['gt']}` ({held['sequences']} sequences)\n" if held else
               "- held-out: none (pass --eval-split, or --eval-dets/--eval-gt): the tuned numbers below are on the "
               "split they were tuned on, so they flatter the config\n")
    best = document["best"]
    text.write(f"\n## Best config: trial {best['trial']}\n\n")
    text.write(f"`{BEST_CONFIG}`; rerun it with `{document['reproduce']}`.\n\n")
    text.write(tabulate([[name, f"{value:.4g}" if isinstance(value, float) else format_value(value)]
                         for name, value in best["params"].items()],
                        headers=["option", "value"], tablefmt="github") + "\n\n")
    text.write("## Baseline vs tuned\n\n")
    rows = []
    for label, key in (("baseline", "baseline"), ("tuned", "best")):
        rows.append([label, "tuning split", *_metric_cells(document[key]["metrics"]["tune"], metrics)])
        if held:
            rows.append([label, "held-out", *_metric_cells(document[key]["metrics"]["eval"], metrics)])
    text.write(tabulate(rows, headers=["config", "split", *metrics], tablefmt="github") + "\n\n")
    text.write("Baseline: the config before tuning (tracker defaults, --tracker-config, flags).\n\n")
    if len(objectives) > 1:
        text.write(f"## Pareto front ({len(document['pareto'])} trials, configs in `{PARETO_DIR}/`)\n\n")
        text.write(tabulate([[p["trial"], *[round(v, 3) for v in p["values"]]] for p in document["pareto"]],
                            headers=["trial", *document["objective_text"]], tablefmt="github") + "\n\n")
    text.write("## Search space\n\n")
    text.write(tabulate([[name, value] for name, value in document["space"].items()],
                        headers=["option", "range or choices"], tablefmt="github") + "\n")
    if document["rejected"]:
        text.write("\n## Pruned trials\n\n")
        text.write(tabulate([[reason, n] for reason, n in document["rejected"].items()],
                            headers=["reason", "trials"], tablefmt="github") + "\n")
    for note in document.get("notes", []):
        text.write(f"\n> {note}\n")
    return text.getvalue()


def write_outputs(study: Any, setup: TuneSetup, out: Path, tune_sequences: list[MotSequence],
                  eval_sequences: list[MotSequence] | None, info: dict[str, Any]) -> tuple[dict[str, Any], list[Path]]:
    """Every output of a study: trials.csv, best_config.yaml (and pareto/*.yaml for several objectives),
    history.png, params_<metric>.png, pareto_front.png, tune.json and summary.md. The best and the baseline config
    are evaluated again on the tuning split and, when given, on the held-out sequences. ``info`` adds
    ``tune``/``eval`` descriptions, ``reproduce``, ``notes`` and ``added`` to tune.json."""
    import optuna

    objectives = setup.objectives
    best_trial = pick_best(study, objectives)
    rows = trial_rows(study, objectives)
    written = [write_trials_csv(rows, out / TRIALS_CSV)]
    best_config = config_of(setup.tracker, best_trial)
    written.append(save_tracker_config(best_config, out / BEST_CONFIG))

    def scored(config: TrackerConfig) -> dict[str, Any]:
        return {"tune": evaluate_config(tune_sequences, setup.tracker, config, setup.conf, setup.iou_threshold),
                "eval": None if eval_sequences is None else
                evaluate_config(eval_sequences, setup.tracker, config, setup.conf, setup.iou_threshold)}

    front = [t for t in study.best_trials]
    states = Counter(t.state for t in study.get_trials(deepcopy=False))
    state = optuna.trial.TrialState
    document = {
        "tracker": setup.tracker,
        "objectives": [o.token for o in objectives],
        "objective_text": [o.label for o in objectives],
        "sampler": "TPE" if len(objectives) == 1 else "NSGA-II",
        "study": setup.study_name,
        "storage": shown_url(setup.storage),
        "trials": {"complete": states[state.COMPLETE], "pruned": states[state.PRUNED], "fail": states[state.FAIL],
                   "running": states[state.RUNNING] + states[state.WAITING], "added": info.get("added", 0)},
        "conf": setup.conf,
        "iou_threshold": setup.iou_threshold,
        "tune": info["tune"],
        "eval": info.get("eval"),
        "reproduce": info.get("reproduce", ""),
        "space": {name: param.describe() for name, param in setup.space.items()},
        "best": {"trial": best_trial.number, "values": list(best_trial.values), "params": dict(best_trial.params),
                 "config": best_config.to_dict(), "metrics": scored(best_config)},
        "baseline": {"config": setup.base.to_dict(), "metrics": scored(setup.base)},
        "pareto": [{"trial": t.number, "values": list(t.values), "params": dict(t.params)} for t in front],
        "rejected": dict(Counter(re.sub(r"=-?[\d.]+(e-?\d+)?", "=...", r["rejected"]) for r in rows
                                 if r["rejected"]).most_common(10)),
        "settings": setup.settings,
        "notes": info.get("notes", []),
    }
    tuned_metrics = document["best"]["metrics"]["tune"]
    stored = best_trial.user_attrs["result"]["metrics"]
    if any(stored.get(m) != tuned_metrics.get(m) for m in METRIC_NAMES):
        document["notes"].append(f"trial {best_trial.number}'s stored metrics differ from a rerun of its config "
                                 "(the detections or ground truth changed since?)")
    pareto_dir = out / PARETO_DIR
    if len(objectives) > 1:
        pareto_dir.mkdir(exist_ok=True)
        for old in pareto_dir.glob("trial_*.yaml"):
            old.unlink()
        for trial in front:
            written.append(save_tracker_config(config_of(setup.tracker, trial),
                                               pareto_dir / f"trial_{trial.number}.yaml"))
        written.append(plot_pareto(rows, objectives, best_trial.number, out / PARETO_PNG))
    written.append(plot_history(rows, objectives, out / HISTORY_PNG))
    searched = list(dict.fromkeys(name for r in [dict(t.params) for t in finished_trials(study)] for name in r))
    for objective in objectives:
        written.append(plot_parameters(rows, objective, searched, best_trial.number,
                                       out / f"params_{objective.metric}.png"))
    atomic_write_json(out / SUMMARY_JSON, document)
    atomic_write_text(out / SUMMARY_MD, summary_markdown(document))
    written += [out / SUMMARY_JSON, out / SUMMARY_MD]
    return document, written
