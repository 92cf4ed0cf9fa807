"""MOTChallenge text files (ground truth, detections, tracker results) and ``seqinfo.ini``.

Every kind of file becomes one ``MotRows`` table of parallel numpy arrays, so the evaluator, the trackers' driver
and the detection cache all speak the same shape. Rows keep their file order (the order motmetrics and TrackEval
see them in, which decides ties in their assignments).

Layouts (frames 1-based, boxes ``x, y, w, h`` in pixels):

- ground truth, MOT16/17 and ours: ``frame,id,x,y,w,h,consider,class,visibility`` (9 columns)
- ground truth, MOT15: ``frame,id,x,y,w,h,conf,wx,wy,wz`` (10 columns, single class)
- detections: ``frame,-1,x,y,w,h,score,class`` (MOTChallenge's own det files end in ``-1,-1,-1``: class unknown)
- results, MOTChallenge standard (``mot``, the default): ``frame,id,x,y,w,h,score,-1,-1,-1``, which TrackEval's
  MotChallenge2DBox and other MOT tools read; the class of each row goes into a sidecar ``<seq>.classes.csv``
  (``frame,id,class``, one row per result row, joined on frame and id)
- results with the class in column 8 (``mot+class``): ``frame,id,x,y,w,h,score,class,-1,-1`` (class -1: unknown);
  this project's earlier layout, which stock MOTChallenge tools reject for classes other than 1
"""

from __future__ import annotations

import configparser
import dataclasses
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from yolox_finetune.core.atomic_io import atomic_open
from yolox_finetune.core.errors import UserError

#: ground-truth layouts understood by ``read_gt``.
GT_FORMATS: tuple[str, ...] = ("auto", "mot15", "mot16")

#: layouts ``write_results`` writes: MOTChallenge standard (class in a sidecar) or class in column 8.
RESULT_FORMATS: tuple[str, ...] = ("mot", "mot+class")
#: layouts ``read_results`` reads; auto: the sidecar when present, else column 8 when it holds class ids.
RESULT_READ_FORMATS: tuple[str, ...] = ("auto", *RESULT_FORMATS)
#: suffix of the per-sequence class sidecar beside a standard results file (``<seq>.txt`` -> ``<seq>.classes.csv``).
CLASS_SIDECAR_SUFFIX = ".classes.csv"

#: class id given to rows whose class is unknown (MOT15, MOTChallenge det/result files with -1 in the class column).
UNKNOWN_CLASS = 0


@dataclass
class MotRows:
    """One MOT file as parallel arrays; ``score`` holds the gt "consider" flag for ground truth."""

    frame: np.ndarray  # (N,) int64, 1-based
    track_id: np.ndarray  # (N,) int64, -1 for detections
    box: np.ndarray  # (N, 4) float64 x, y, w, h
    score: np.ndarray  # (N,) float64
    class_id: np.ndarray  # (N,) int64, UNKNOWN_CLASS when the file has none
    visibility: np.ndarray  # (N,) float64, 1 when the file has none
    source: str = ""
    fmt: str = field(default="mot16")
    #: line numbers of the file's rows left out because their box has no area (width or height <= 0).
    skipped_lines: tuple[int, ...] = ()

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def select(self, mask: np.ndarray) -> MotRows:
        """The rows where ``mask`` is true (or the given indices), same source and format."""
        return MotRows(self.frame[mask], self.track_id[mask], self.box[mask], self.score[mask], self.class_id[mask],
                       self.visibility[mask], self.source, self.fmt)

    @property
    def num_frames(self) -> int:
        """Last frame number mentioned (0 when empty)."""
        return int(self.frame.max()) if len(self) else 0

    def frame_slices(self) -> dict[int, np.ndarray]:
        """frame -> row indices in file order (a stable grouping; frames need not be sorted in the file)."""
        if not len(self):
            return {}
        order = np.argsort(self.frame, kind="stable")
        frames = self.frame[order]
        starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]])
        ends = np.r_[starts[1:], len(frames)]
        return {int(frames[s]): order[s:e] for s, e in zip(starts, ends)}


def empty_rows(source: str = "", fmt: str = "mot16") -> MotRows:
    """A table with no rows (a sequence where nothing was detected or tracked)."""
    return MotRows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64),
                   np.ones(0), source, fmt)


#: most columns any MOT text row has (MOT15 ground truth, MOTChallenge det and result files: 10).
MAX_COLUMNS = 10


def _not_text(path: Path, what: str, exc: UnicodeDecodeError) -> UserError:
    return UserError(f"{path}: not a UTF-8 text file (byte {exc.start} of it cannot be decoded); pass a plain-text "
                     f"{what} file")


def read_text(path: Path, what: str) -> str:
    """The whole file as text; a file that is not UTF-8 text is one UserError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _not_text(path, what, exc) from None


def text_lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of every non-blank line; a file that is not UTF-8 text is one UserError."""
    try:
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                text = line.strip()
                if text:
                    yield lineno, text
    except UnicodeDecodeError as exc:
        raise _not_text(path, what, exc) from None


def _split(text: str) -> list[str]:
    return text.replace("\t", ",").split(",") if "," in text or "\t" in text else text.split()


def _parse_numbers(path: Path, min_columns: int, what: str,
                   seq_length: int | None = None) -> tuple[list[tuple[int, list[float]]], list[int]]:
    """(line number, values) of every non-blank line, and the line numbers of rows skipped because their box has
    no area. A malformed line, or a frame past ``seq_length`` (seqinfo.ini), is a UserError naming file and line."""
    if not path.is_file():
        raise UserError(f"{what} file {path} not found; check the path (expected a MOTChallenge .txt file)")
    rows, skipped = [], []
    for lineno, text in text_lines(path, what):
        parts = _split(text)
        where = f"{path}:{lineno}: {what} row {text[:80]!r}"
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise UserError(f"{where} has a non-numeric field; fix or delete the row") from None
        if not min_columns <= len(values) <= MAX_COLUMNS:
            expected = f"{min_columns} to {MAX_COLUMNS}" if min_columns < MAX_COLUMNS else str(MAX_COLUMNS)
            raise UserError(f"{where} has {len(values)} columns, expected {expected} (comma-separated "
                            f"frame,id,x,y,w,h,...); fix or delete the row")
        if not all(np.isfinite(values)):
            raise UserError(f"{where} has a nan/inf field; fix or delete the row")
        frame = values[0]
        if frame < 1 or frame != int(frame):
            raise UserError(f"{where} has frame {parts[0]!r}; frames are whole numbers starting at 1: fix or "
                            "delete the row")
        if seq_length is not None and frame > seq_length:
            raise UserError(f"{where} has frame {int(frame)}, past the sequence's last frame {seq_length}: is "
                            f"this file of another sequence or frame rate? Fix the file (or seqLength in seqinfo.ini)")
        if values[4] <= 0 or values[5] <= 0:
            skipped.append(lineno)
            continue
        rows.append((lineno, values))
    return rows, skipped


def _check_ids(path: Path, rows: list[tuple[int, list[float]]], what: str) -> None:
    """Track ids must be whole numbers; one id may not appear twice in one frame."""
    seen: set[tuple[int, int]] = set()
    for lineno, values in rows:
        if values[1] != int(values[1]):
            raise UserError(f"{path}:{lineno}: {what} track id {values[1]} is not a whole number; fix the row")
        key = (int(values[0]), int(values[1]))
        if key in seen:
            raise UserError(f"{path}:{lineno}: {what} track id {key[1]} appears twice in frame {key[0]}; "
                            "each id may occur once per frame: fix or delete one of the rows")
        seen.add(key)


def _table(rows: list[tuple[int, list[float]]], source: Path, fmt: str, score_col: int,
           class_col: int | None, visibility_col: int | None, skipped: list[int] | None = None) -> MotRows:
    if not rows:
        return dataclasses.replace(empty_rows(str(source), fmt), skipped_lines=tuple(skipped or ()))
    width = max(len(v) for _, v in rows)
    data = np.full((len(rows), width), -1.0)
    for i, (_, values) in enumerate(rows):
        data[i, : len(values)] = values
    n = len(rows)
    if class_col is None:
        class_id = np.full(n, UNKNOWN_CLASS, np.int64)
    else:
        class_id = data[:, class_col].astype(np.int64)
        class_id[class_id < 1] = UNKNOWN_CLASS
    visibility = np.ones(n) if visibility_col is None else data[:, visibility_col].copy()
    return MotRows(data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), data[:, 2:6].copy(),
                   data[:, score_col].copy(), class_id, visibility, str(source), fmt, tuple(skipped or ()))


def detect_gt_format(path: str | os.PathLike) -> str:
    """``mot15`` for 10-column ground truth (conf + world coordinates), ``mot16`` for 9 columns (consider, class,
    visibility) as MOT16/17 and our nuScenes export write it."""
    path = Path(path)
    for lineno, text in text_lines(path, "ground truth"):
        columns = len(_split(text))
        if columns == 9:
            return "mot16"
        if columns == 10:
            return "mot15"
        raise UserError(f"{path}:{lineno}: ground truth row has {columns} columns; expected 9 "
                        "(frame,id,x,y,w,h,consider,class,visibility) or 10 (MOT15); fix the file or pass the "
                        "format explicitly")
    return "mot16"


def read_gt(path: str | os.PathLike, fmt: str = "auto", seq_length: int | None = None) -> MotRows:
    """Ground truth; ``fmt`` "auto" (by column count), "mot15" (single class) or "mot16" (class in column 8).
    Rows whose box has no area are left out (``skipped_lines``); a frame past ``seq_length`` is an error."""
    path = Path(path)
    if fmt not in GT_FORMATS:
        raise UserError(f"unknown ground-truth format {fmt!r}; choose one of {', '.join(GT_FORMATS)}")
    if not path.is_file():
        raise UserError(f"ground truth file {path} not found; expected <gt root>/<seq>/gt/gt.txt")
    if fmt == "auto":
        fmt = detect_gt_format(path)
    rows, skipped = _parse_numbers(path, 7 if fmt == "mot15" else 9, "ground truth", seq_length)
    _check_ids(path, rows, "ground truth")
    if fmt == "mot15":
        return _table(rows, path, fmt, score_col=6, class_col=None, visibility_col=None, skipped=skipped)
    return _table(rows, path, fmt, score_col=6, class_col=7, visibility_col=8, skipped=skipped)


def read_detections(path: str | os.PathLike, seq_length: int | None = None) -> MotRows:
    """Detections ``frame,-1,x,y,w,h,score[,class]``; a missing or -1 class column means class unknown. Rows
    whose box has no area are left out (``skipped_lines``); a frame past ``seq_length`` is an error."""
    path = Path(path)
    rows, skipped = _parse_numbers(path, 7, "detection", seq_length)
    has_class = bool(rows) and min(len(v) for _, v in rows) >= 8
    return _table(rows, path, "det", score_col=6, class_col=7 if has_class else None, visibility_col=None,
                  skipped=skipped)


def class_sidecar(path: str | os.PathLike) -> Path:
    """The class sidecar of a results file: ``<seq>.txt`` -> ``<seq>.classes.csv``."""
    path = Path(path)
    return path.with_name(path.name.removesuffix(path.suffix) + CLASS_SIDECAR_SUFFIX)


def read_results(path: str | os.PathLike, fmt: str = "auto", seq_length: int | None = None) -> MotRows:
    """Tracker output ``frame,id,x,y,w,h,score[,...]``.

    The class of each row: ``mot`` reads it from the sidecar ``<seq>.classes.csv`` when there is one (else unknown);
    ``mot+class`` from column 8 (-1: unknown); ``auto`` takes the sidecar when present, else column 8 when any row
    holds a class id there (a standard file has -1), else unknown. Rows whose box has no area are left out
    (``skipped_lines``); a frame past ``seq_length`` is an error.
    """
    path = Path(path)
    if fmt not in RESULT_READ_FORMATS:
        raise UserError(f"unknown results format {fmt!r}; choose one of {', '.join(RESULT_READ_FORMATS)}")
    rows, skipped = _parse_numbers(path, 6, "result", seq_length)
    _check_ids(path, rows, "result")
    rows = [(n, v if len(v) >= 7 else v + [1.0]) for n, v in rows]
    sidecar = class_sidecar(path)
    if fmt == "auto":
        column8 = [v[7] for _, v in rows if len(v) >= 8]
        fmt = "mot" if sidecar.is_file() or not any(c >= 1 for c in column8) else "mot+class"
    if fmt == "mot+class":
        if rows and min(len(v) for _, v in rows) < 8:
            raise UserError(f"{path}: results format mot+class needs the class in column 8, but a row has "
                            f"{min(len(v) for _, v in rows)} columns; pass --results-format mot for standard files")
        return _table(rows, path, "result", score_col=6, class_col=7, visibility_col=None, skipped=skipped)
    table = _table(rows, path, "result", score_col=6, class_col=None, visibility_col=None, skipped=skipped)
    if sidecar.is_file():
        table.class_id = _sidecar_classes(sidecar, table)
    return table


def _sidecar_classes(sidecar: Path, table: MotRows) -> np.ndarray:
    """Class of each row of ``table`` from its sidecar (``frame,id,class`` rows keyed by frame and id)."""
    by_key: dict[tuple[int, int], int] = {}
    for lineno, text in text_lines(sidecar, "class sidecar"):
        if text.startswith("frame"):
            continue
        try:
            frame, track, cls = (int(float(p)) for p in text.split(","))
        except ValueError:
            raise UserError(f"{sidecar}:{lineno}: row {text[:80]!r} is not frame,id,class; fix the row or delete "
                            "the sidecar (the results are then class-less)") from None
        by_key[(frame, track)] = cls if cls >= 1 else UNKNOWN_CLASS
    classes = np.full(len(table), UNKNOWN_CLASS, np.int64)
    for i, key in enumerate(zip(table.frame.tolist(), table.track_id.tolist())):
        if key not in by_key:
            raise UserError(f"{sidecar} has no class for frame {key[0]}, id {key[1]} of {table.source}; the sidecar "
                            "belongs to another version of the results: write both again, or delete the sidecar")
        classes[i] = by_key[key]
    return classes


def _fmt(value: float) -> str:
    """Coordinates with 3 decimals (a thousandth of a pixel), trailing zeros dropped."""
    return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def write_detections(path: str | os.PathLike, rows: MotRows) -> None:
    """Atomically write ``frame,-1,x,y,w,h,score,class`` rows: coordinates with 3 decimals, scores repr-exact, so
    a score read back is the score written and one just below a threshold never passes ``>=`` it."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for f, (x, y, w, h), s, c in zip(rows.frame, rows.box, rows.score, rows.class_id):
            handle.write(f"{int(f)},-1,{_fmt(x)},{_fmt(y)},{_fmt(w)},{_fmt(h)},{float(s)!r},"
                         f"{int(c) if c > 0 else -1}\n")


def write_results(path: str | os.PathLike, rows: MotRows, fmt: str = "mot") -> list[Path]:
    """Atomically write tracker results sorted by frame then id; returns the files written.

    ``mot`` (default): MOTChallenge's ``frame,id,x,y,w,h,score,-1,-1,-1`` plus the class sidecar
    ``<seq>.classes.csv`` (only when some row has a class). ``mot+class``: ``frame,id,x,y,w,h,score,class,-1,-1``
    and no sidecar (a stale one is removed, so a reader never joins old classes).
    """
    if fmt not in RESULT_FORMATS:
        raise UserError(f"unknown results format {fmt!r}; choose one of {', '.join(RESULT_FORMATS)}")
    path = Path(path)
    order = np.lexsort((rows.track_id, rows.frame)) if len(rows) else np.zeros(0, np.int64)
    with_class = fmt == "mot+class"
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for i in order:
            x, y, w, h = rows.box[i]
            c = int(rows.class_id[i])
            column8 = (c if c > 0 else -1) if with_class else -1
            handle.write(f"{int(rows.frame[i])},{int(rows.track_id[i])},{x:.2f},{y:.2f},{w:.2f},{h:.2f},"
                         f"{rows.score[i]:.4f},{column8},-1,-1\n")
    sidecar = class_sidecar(path)
    if with_class or not (rows.class_id > 0).any():
        sidecar.unlink(missing_ok=True)
        return [path]
    with atomic_open(sidecar, "w", encoding="utf-8") as handle:
        handle.write("frame,id,class\n")
        for i in order:
            c = int(rows.class_id[i])
            handle.write(f"{int(rows.frame[i])},{int(rows.track_id[i])},{c if c > 0 else -1}\n")
    return [path, sidecar]


def write_gt(path: str | os.PathLike, rows: MotRows) -> None:
    """Atomically write MOT16/17-style ground truth ``frame,id,x,y,w,h,consider,class,visibility``."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for f, t, (x, y, w, h), s, c, v in zip(rows.frame, rows.track_id, rows.box, rows.score, rows.class_id,
                                               rows.visibility):
            handle.write(f"{int(f)},{int(t)},{_fmt(x)},{_fmt(y)},{_fmt(w)},{_fmt(h)},{int(s)},{int(c)},{v:.3f}\n")


@dataclass
class SeqInfo:
    """The ``[Sequence]`` section of ``seqinfo.ini``; fields are None when the file does not give them."""

    name: str
    frame_rate: float | None = None
    seq_length: int | None = None
    im_width: int | None = None
    im_height: int | None = None
    im_dir: str = "img1"
    im_ext: str = ".jpg"


#: the numeric keys of seqinfo.ini: key -> (type, an example value for messages).
_SEQINFO_NUMBERS: dict[str, tuple[type, str]] = {"frameRate": (float, "12"), "seqLength": (int, "40"),
                                                 "imWidth": (int, "1600"), "imHeight": (int, "900")}


def read_seqinfo(seq_dir: str | os.PathLike) -> SeqInfo:
    """``<seq_dir>/seqinfo.ini`` when present, else a SeqInfo with only the name (the folder's). A file that does
    not parse, lacks the [Sequence] section or holds a bad number is one UserError naming the file and the key."""
    seq_dir = Path(seq_dir)
    ini = seq_dir / "seqinfo.ini"
    info = SeqInfo(name=seq_dir.name)
    if not ini.is_file():
        return info
    parser = configparser.ConfigParser(interpolation=None)
    content = read_text(ini, "seqinfo.ini")
    try:
        parser.read_string(content, source=str(ini))
    except configparser.MissingSectionHeaderError as exc:
        raise UserError(f"{ini}:{exc.lineno}: {exc.line.strip()!r} comes before the section header; start the "
                        "file with a '[Sequence]' line (MOTChallenge layout), or delete the file") from None
    except configparser.ParsingError as exc:
        lineno = exc.errors[0][0]
        line = content.splitlines()[lineno - 1].strip()
        raise UserError(f"{ini}:{lineno}: {line!r} is not a 'key=value' line; fix or delete the line") from None
    except (configparser.DuplicateOptionError, configparser.DuplicateSectionError) as exc:
        what = f"key {exc.option}" if isinstance(exc, configparser.DuplicateOptionError) else f"[{exc.section}]"
        raise UserError(f"{ini}:{exc.lineno}: {what} is given twice; keep one") from None
    except configparser.Error as exc:
        raise UserError(f"{ini}: not an INI file ({exc}); write '[Sequence]' then 'key=value' lines, or delete "
                        "the file") from None
    if not parser.has_section("Sequence"):
        raise UserError(f"{ini}: no [Sequence] section; start the file with a '[Sequence]' line (MOTChallenge "
                        "layout), or delete it")
    section = parser["Sequence"]
    values: dict[str, float | int | None] = {}
    for key, (kind, example) in _SEQINFO_NUMBERS.items():
        text = section.get(key)
        if text is None:
            values[key] = None
            continue
        try:
            value = kind(text)
            if not math.isfinite(value) or value <= 0:
                raise ValueError
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise UserError(f"{ini}: {key}={text!r} is not {what} above 0; fix it (e.g. {key}={example}) or "
                            "delete the line") from None
        values[key] = value
    info.name = section.get("name", seq_dir.name)
    info.frame_rate, info.seq_length = values["frameRate"], values["seqLength"]
    info.im_width, info.im_height = values["imWidth"], values["imHeight"]
    info.im_dir = section.get("imDir", "img1")
    info.im_ext = section.get("imExt", ".jpg")
    return info


def write_seqinfo(seq_dir: str | os.PathLike, info: SeqInfo) -> None:
    """Atomically write ``seqinfo.ini`` in the MOTChallenge layout."""
    lines = ["[Sequence]", f"name={info.name}", f"imDir={info.im_dir}"]
    if info.frame_rate is not None:
        lines.append(f"frameRate={info.frame_rate:g}")
    if info.seq_length is not None:
        lines.append(f"seqLength={info.seq_length}")
    if info.im_width is not None:
        lines.append(f"imWidth={info.im_width}")
    if info.im_height is not None:
        lines.append(f"imHeight={info.im_height}")
    lines.append(f"imExt={info.im_ext}")
    with atomic_open(Path(seq_dir) / "seqinfo.ini", "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def list_sequences(gt_root: str | os.PathLike) -> list[str]:
    """Names of the sequences under ``gt_root`` (folders holding ``gt/gt.txt``), sorted; none is an error."""
    root = Path(gt_root)
    if not root.is_dir():
        state = "is a file" if root.exists() else "does not exist"
        raise UserError(f"ground-truth folder {root} {state}; pass the folder holding <seq>/gt/gt.txt")
    names = sorted(p.name for p in root.iterdir() if (p / "gt" / "gt.txt").is_file())
    if not names and (root / "gt" / "gt.txt").is_file():
        raise UserError(f"{root} is one sequence, not a folder of sequences; pass its parent folder "
                        f"({root.resolve().parent}) and the sequences beside it are evaluated too")
    if not names:
        without = folders_without_gt(root)
        found = f"; its {len(without)} folder(s) ({name_list(without)}) have no gt/gt.txt" if without else ""
        raise UserError(f"no sequences in {root}: expected <seq>/gt/gt.txt below it (MOTChallenge layout){found}")
    return names


def folders_without_gt(gt_root: str | os.PathLike) -> list[str]:
    """Folders under ``gt_root`` without ``gt/gt.txt`` (hidden ones aside): sequences that cannot be scored, which
    a tool reports by name rather than dropping in silence."""
    root = Path(gt_root)
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and not (p / "gt" / "gt.txt").is_file())


def files_without_gt(folder: str | os.PathLike, sequences: list[str]) -> list[str]:
    """The ``<name>.txt`` files of a det or results folder named after none of ``sequences``."""
    known = set(sequences)
    return sorted(p.name for p in Path(folder).glob("*.txt") if p.is_file() and p.stem not in known)


def name_list(names: list[str], shown: int = 3) -> str:
    """``a, b, c and 4 more``: a list short enough for one error line."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def frame_images(seq_dir: str | os.PathLike) -> dict[int, Path]:
    """frame number -> image path for ``<seq>/<imDir>/<000001>.<ext>`` files (empty when there are none).

    The file name is the frame number, as in MOTChallenge, so ground truth, det files and images agree; a folder
    numbered from 0 or naming one frame twice is refused (renumbering by position would shift it against gt.txt).
    """
    seq_dir = Path(seq_dir)
    info = read_seqinfo(seq_dir)
    image_dir = seq_dir / info.im_dir
    if not image_dir.is_dir():
        return {}
    images: dict[int, Path] = {}
    for path in sorted(image_dir.iterdir()):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or not path.stem.isdigit():
            continue
        frame = int(path.stem)
        if frame < 1:
            raise UserError(f"{path}: frame images are numbered from 1 (000001{path.suffix}) as in MOTChallenge; "
                            f"renumber {image_dir} from 1 so the frames match gt.txt")
        if frame in images:
            raise UserError(f"{path} and {images[frame].name} are both frame {frame}; keep one image per frame")
        images[frame] = path
    return dict(sorted(images.items()))


#: a sequence's list of annotated frames (one number per line), written when it holds unannotated frames too
#: (camera sweeps between nuScenes keyframes): only these frames are scored.
ANNOTATED_FRAMES_FILE = "annotated_frames.txt"


def write_annotated_frames(seq_dir: str | os.PathLike, frames: list[int]) -> None:
    with atomic_open(Path(seq_dir) / ANNOTATED_FRAMES_FILE, "w", encoding="utf-8") as handle:
        handle.write("".join(f"{frame}\n" for frame in sorted(set(frames))))


def read_annotated_frames(seq_dir: str | os.PathLike) -> list[int] | None:
    """The frames that carry ground truth, or None when every frame does (no annotated_frames.txt)."""
    path = Path(seq_dir) / ANNOTATED_FRAMES_FILE
    if not path.is_file():
        return None
    frames = []
    for number, text in text_lines(path, ANNOTATED_FRAMES_FILE):
        if not text.isdigit() or int(text) < 1:
            raise UserError(f"{path}:{number}: {text[:40]!r} is not a frame number (one 1-based frame per line); "
                            f"re-convert the sequence or fix the line")
        frames.append(int(text))
    return sorted(set(frames))
