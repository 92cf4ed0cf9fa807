"""Bad MOT input through the real tool (tools/track_eval.py): malformed rows and seqinfo.ini files are one error line
naming file, line (or key) and the fix, with nothing written; what can be left out (rows without area, folders or
files without ground truth) is left out by name and count, in the log and in metrics.json.

Most cases run the tool's own ``__main__`` in the test process (``run_tool_inprocess``: the imports are done once);
one case of each kind starts it as a separate process, exactly as a user does (``run_tool``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from yolox_finetune.mot.formats import read_detections
from yolox_finetune.mot.synthetic import make_scene, write_dataset

SEQS = ("scene-0", "scene-1")
FRAMES = 8


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """``gt/<seq>/{gt/gt.txt,seqinfo.ini}`` and ``dets/<seq>.txt`` of two short sequences (seqLength 8)."""
    root = tmp_path_factory.mktemp("mot")
    rng = np.random.default_rng(3)
    scenes = [make_scene(rng, name=name, num_frames=FRAMES, num_objects=3) for name in SEQS]
    write_dataset(root / "gt", root / "dets", scenes)
    return root


@pytest.fixture()
def data(dataset, tmp_path) -> Path:
    """A private copy of the dataset, for tests that break it."""
    return Path(shutil.copytree(dataset, tmp_path / "data"))


def track_eval(run_tool, data: Path, out: Path, *more: str):
    return run_tool("track_eval.py", "--dets", data / "dets", "--gt", data / "gt", "--out", out, "--tracker",
                    "bytetrack", *more, timeout=180)


def append(path: Path, text: str) -> int:
    """Append a line to ``path``; returns its line number."""
    path.write_text(path.read_text() + text + "\n")
    return len(path.read_text().splitlines())


#: the malformed row given to a separate process (the others go to the tool's main in this process)
PROCESS_ROW = "1,1,10,20,30"


@pytest.mark.parametrize("which, row, problem", [
    ("gt", "1,1,10,20,30", "has 5 columns"),
    ("gt", "2,1,10,20,30,40,1,1,1,0,0", "has 11 columns"),
    ("gt", "0,7,10,20,30,40,1,1,1", "frames are whole numbers starting at 1"),
    ("det", "3,-1,1,2,oops,4,0.5,1", "non-numeric field"),
    ("det", "3,-1,1,2,nan,4,0.5,1", "nan/inf"),
    ("det", "-2,-1,1,2,3,4,0.5,1", "frames are whole numbers starting at 1"),
    ("det", f"{FRAMES + 40},-1,1,2,3,4,0.5,1", f"past the sequence's last frame {FRAMES}"),
    ("gt", f"{FRAMES + 1},9,10,20,30,40,1,1,1", f"past the sequence's last frame {FRAMES}"),
])
def test_a_malformed_row_is_one_line_naming_file_line_and_fix(data, tmp_path, run_tool, run_tool_inprocess,
                                                              one_error_line, which, row, problem):
    target = data / "gt" / "scene-1" / "gt" / "gt.txt" if which == "gt" else data / "dets" / "scene-1.txt"
    line = append(target, row)
    runner = run_tool if row == PROCESS_ROW else run_tool_inprocess
    proc = track_eval(runner, data, tmp_path / "out")
    message = one_error_line(proc, f"{target}:{line}:", problem)
    assert "fix" in message.lower()
    assert not (tmp_path / "out").exists()  # refused before the output folder was made


def test_results_of_another_sequence_or_not_text_are_refused(data, tmp_path, run_tool_inprocess, one_error_line):
    results = tmp_path / "results"
    results.mkdir()
    for name in SEQS:
        (results / f"{name}.txt").write_text("1,1,10,10,20,20,0.9,-1,-1,-1\n")
    line = append(results / "scene-0.txt", f"{FRAMES + 3},1,10,10,20,20,0.9,-1,-1,-1")
    proc = run_tool_inprocess("track_eval.py", "--results", results, "--gt", data / "gt", "--out", tmp_path / "out",
                              timeout=180)
    one_error_line(proc, f"results/scene-0.txt:{line}:", "another sequence")
    (data / "dets" / "scene-0.txt").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    proc = track_eval(run_tool_inprocess, data, tmp_path / "out")
    one_error_line(proc, f"{data / 'dets' / 'scene-0.txt'}: not a UTF-8 text file")
    assert not (tmp_path / "out").exists()


#: the broken seqinfo.ini given to a separate process
PROCESS_SEQINFO = "frameRate=12\nseqLength=8\n"


@pytest.mark.parametrize("content, fragments", [
    ("frameRate=12\nseqLength=8\n", [":1:", "'frameRate=12' comes before the section header", "[Sequence]"]),
    ("[Other]\nname=x\n", ["no [Sequence] section"]),
    ("[Sequence]\nframeRate=fast\n", ["frameRate='fast' is not a number above 0", "e.g. frameRate=12"]),
    ("[Sequence]\nseqLength=0\n", ["seqLength='0' is not a whole number above 0"]),
    ("[Sequence]\nname=scene-1\nseqLength\n", [":3:", "'seqLength' is not a 'key=value' line"]),
    ("[Sequence]\nseqLength=8\nseqLength=9\n", [":3:", "seqlength is given twice"]),
    (b"[Sequence]\nname=\xff\xfe\n", ["not a UTF-8 text file"]),
])
def test_a_malformed_seqinfo_names_the_file_and_the_key(data, tmp_path, run_tool, run_tool_inprocess, one_error_line,
                                                       content, fragments):
    ini = data / "gt" / "scene-1" / "seqinfo.ini"
    if isinstance(content, bytes):
        ini.write_bytes(content)
    else:
        ini.write_text(content)
    runner = run_tool if content == PROCESS_SEQINFO else run_tool_inprocess
    proc = track_eval(runner, data, tmp_path / "out")
    one_error_line(proc, str(ini), *fragments)
    assert not (tmp_path / "out").exists()


def test_a_missing_seqinfo_is_reported_as_an_assumed_frame_rate(data, tmp_path, run_tool, run_tool_inprocess):
    (data / "gt" / "scene-0" / "seqinfo.ini").unlink()
    proc = track_eval(run_tool, data, tmp_path / "out")  # a separate process: the warning reaches a real stderr
    assert proc.returncode == 0, proc.stderr
    assert "1 sequence(s) have no frameRate in seqinfo.ini (scene-0): tracked at 12 fps; pass --fps" in proc.stderr
    skipped = json.loads((tmp_path / "out" / "metrics.json").read_text())["skipped"]
    assert skipped["assumed_frame_rate"] == {"scene-0": 12.0}
    # the user said which: nothing to report
    proc = track_eval(run_tool_inprocess, data, tmp_path / "out", "--fps", "10")
    assert proc.returncode == 0 and "frameRate" not in proc.stderr
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["skipped"]["assumed_frame_rate"] == {}


def test_rows_without_area_are_skipped_counted_and_reported(data, tmp_path, run_tool_inprocess):
    dets = data / "dets" / "scene-0.txt"
    zero_width = append(dets, "2,-1,10,10,0,20,0.9,1")
    negative_height = append(dets, "3,-1,10,10,20,-5,0.9,1")
    gt = data / "gt" / "scene-1" / "gt" / "gt.txt"
    flat_gt = append(gt, "4,99,10,10,20,0,1,1,1")
    proc = track_eval(run_tool_inprocess, data, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert f"skipped 2 row(s) without area (width or height <= 0) in {dets}: line(s) {zero_width}, " \
           f"{negative_height}" in proc.stderr
    assert f"skipped 1 row(s) without area (width or height <= 0) in {gt}: line(s) {flat_gt}" in proc.stderr
    document = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert document["skipped"]["rows_without_area"] == {str(dets): [zero_width, negative_height],
                                                        str(gt): [flat_gt]}
    assert document["skipped"]["rows_without_area_count"] == 3
    # the other rows are read as before: the skipped ones are simply absent
    rows = read_detections(dets)
    assert len(rows) == zero_width - 1 and rows.skipped_lines == (zero_width, negative_height)


def test_a_sequence_folder_without_ground_truth_is_skipped_by_name(data, tmp_path, run_tool_inprocess,
                                                                   one_error_line):
    (data / "gt" / "scene-1" / "gt" / "gt.txt").unlink()
    (data / "gt" / "scene-2" / "img1").mkdir(parents=True)  # frames, but no ground truth yet
    (data / "gt" / ".hidden").mkdir()  # not a sequence
    proc = track_eval(run_tool_inprocess, data, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "skipped 2 sequence folder(s) of" in proc.stderr and "without gt/gt.txt: scene-1, scene-2" in proc.stderr
    assert "1 sequences (2 without ground truth skipped)" in proc.stderr
    document = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert document["skipped"]["sequences_without_gt"] == ["scene-1", "scene-2"]
    assert list(document["trackers"]["bytetrack"]["per_sequence"]) == ["scene-0"]
    # its det file is left over too, and said so
    assert document["skipped"]["files_without_gt"] == ["scene-1.txt"]
    # with no sequence left there is nothing to evaluate: an error naming the folders
    (data / "gt" / "scene-0" / "gt" / "gt.txt").unlink()
    proc = track_eval(run_tool_inprocess, data, tmp_path / "again")
    one_error_line(proc, "no sequences in", "its 3 folder(s) (scene-0, scene-1, scene-2) have no gt/gt.txt")
    assert not (tmp_path / "again").exists()


def test_det_files_without_ground_truth_are_reported_and_a_foreign_folder_refused(data, tmp_path, run_tool_inprocess,
                                                                                  one_error_line):
    shutil.copy(data / "dets" / "scene-0.txt", data / "dets" / "scene-9.txt")
    proc = track_eval(run_tool_inprocess, data, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert f"ignored 1 file(s) in {data / 'dets'} named after no ground-truth sequence: scene-9.txt" in proc.stderr
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["skipped"]["files_without_gt"] == [
        "scene-9.txt"]
    # a det folder of other sequences matches nothing: an error that says so
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    shutil.copy(data / "dets" / "scene-0.txt", foreign / "MOT17-02.txt")
    proc = run_tool_inprocess("track_eval.py", "--dets", foreign, "--gt", data / "gt", "--out", tmp_path / "o2")
    one_error_line(proc, f"{foreign} has no detections for any of the 2 sequence(s)",
                          "its files (MOT17-02.txt) match none of them")
    # one sequence without detections: named
    (data / "dets" / "scene-1.txt").unlink()
    proc = track_eval(run_tool_inprocess, data, tmp_path / "o3")
    one_error_line(proc, "has no detections for 1 sequence(s)", "(scene-1)")
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_results_files_without_ground_truth_are_reported(data, tmp_path, run_tool_inprocess, one_error_line):
    results = tmp_path / "results"
    results.mkdir()
    for name in (*SEQS, "scene-7"):
        (results / f"{name}.txt").write_text("1,1,10,10,20,20,0.9,-1,-1,-1\n")
    proc = run_tool_inprocess("track_eval.py", "--results", results, "--gt", data / "gt", "--out", tmp_path / "out",
                              timeout=180)  # standard files without classes against two classes of ground truth
    one_error_line(proc, "results/scene-0.txt: rows without a class", "--class-agnostic")
    assert not (tmp_path / "out").exists()
    proc = run_tool_inprocess("track_eval.py", "--results", results, "--gt", data / "gt", "--json",
                              tmp_path / "m.json", "--class-agnostic", timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "named after no ground-truth sequence: scene-7.txt" in proc.stderr
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["skipped"]["files_without_gt"] == ["scene-7.txt"]
    assert document["skipped"]["assumed_frame_rate"] == {}  # nothing is tracked in --results mode


def test_ground_truth_roots_that_are_not_folders_of_sequences_are_refused(dataset, tmp_path, run_tool_inprocess,
                                                                          one_error_line):
    """One sequence (a common slip), a file, or a folder that does not exist: one line each, saying what to pass."""
    one = dataset / "gt" / "scene-0"
    cases = [(one, [f"{one} is one sequence", f"pass its parent folder ({dataset / 'gt'})"]),
             (one / "seqinfo.ini", ["is a file; pass the folder holding <seq>/gt/gt.txt"]),
             (tmp_path / "nowhere", ["does not exist; pass the folder holding <seq>/gt/gt.txt"])]
    for gt_root, fragments in cases:
        proc = run_tool_inprocess("track_eval.py", "--dets", dataset / "dets", "--gt", gt_root, "--out",
                                  tmp_path / "out", timeout=180)
        one_error_line(proc, *fragments)
    assert not (tmp_path / "out").exists()
