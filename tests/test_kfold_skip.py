"""A k-fold protocol run with ``--on-bad-image skip``: a video whose every frame is unreadable loses its pairs, and
each remaining pair keeps its own fold (the fold column is masked like the scores and labels), so the accuracy is
that of the surviving pairs in their folds, exactly."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from _reference import kfold_accuracy_loop
from fiqa_bench.cli.main import main
from fiqa_bench.pipeline.runner import open_protocol
from fiqa_bench.results.record import read_raw


def _break_video(src, dest, video: str) -> list[str]:
    """A copy of the YTF-layout benchmark ``src`` whose video ``video`` (``<identity>/<n>``) has only truncated
    frames; returns their names."""
    shutil.copytree(src, dest)
    frames = sorted((dest / "frame_images_DB" / video).iterdir())
    for f in frames:
        f.write_bytes(f.read_bytes()[:200])
    return [f.name for f in frames]


@pytest.mark.shared
def test_kfold_run_with_skipped_images_keeps_each_pair_in_its_fold(small_ytf, mbf, tmp_path, isolated_cache):
    bench_dir = tmp_path / "ytf"
    # the first line of splits.txt: fold 1, a genuine pair of two videos of one identity
    first = (small_ytf / "splits.txt").read_text().splitlines()[0].split(",")
    video = first[2].strip()
    broken = _break_video(small_ytf, bench_dir, video)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main,
        [
            "run",
            "-p",
            str(bench_dir),
            "--fr",
            mbf,
            "-m",
            "blur",
            "--on-bad-image",
            "skip",
            "--bootstrap",
            "0",
            "-o",
            str(out),
            "--no-progress",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    (path,) = sorted(out.glob("*.json"))
    raw = read_raw(path)
    rec = json.loads(path.read_text())
    # every frame of the video was skipped and counted; the pairs with that video are gone, the rest scored
    bench = open_protocol(str(bench_dir)).load()
    pairs = bench.pairs
    video_group = set(bench.faces["group"][bench.faces["path"].astype(str).str.contains(f"/{video}/")].tolist())
    assert len(video_group) == 1
    (g,) = video_group
    lost = (pairs["a"] == g) | (pairs["b"] == g)
    assert rec["counts"]["skipped"] == len(broken) == 3
    assert rec["counts"]["pairs_dropped"] == int(lost.sum()) == 2
    assert rec["counts"]["pairs_scored"] == len(pairs) - 2
    # each scored pair carries the fold of its own line in the protocol, not of the line that used to be there
    kept = pairs[~lost]
    assert raw["pair_a"].tolist() == kept["a"].tolist() and raw["pair_b"].tolist() == kept["b"].tolist()
    assert raw["pair_folds"].tolist() == kept["fold"].tolist()
    assert raw["pair_labels"].tolist() == kept["label"].tolist()
    # the accuracy of the surviving pairs in their folds, by a loop over the pairs
    ref = kfold_accuracy_loop(raw["pair_scores"], raw["pair_labels"], raw["pair_folds"])
    acc = rec["metrics"]["accuracy"]
    assert acc["folds"] == ref["folds"] and acc["thresholds"] == ref["thresholds"]
    assert acc["mean"] == ref["mean"] and acc["std"] == ref["std"]
    assert len(acc["folds"]) == len(set(kept["fold"].tolist())) == 10
    assert np.isfinite(raw["pair_scores"]).all()
