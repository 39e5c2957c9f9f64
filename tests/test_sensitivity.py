"""``fiqa-bench sensitivity`` (issue 24 item 5): the share of degraded copies a method scores below their source
photo, per kind and strength, with intervals over subjects; checked against loops written here, on a real prepared
benchmark (celeba-wild photos, the bundled tinyfq) and on a real labelled set."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_bench.analyses.sensitivity import Copies, parse_strength, parse_strengths, sensitivity
from fiqa_bench.cli.main import main
from fiqa_bench.data.degradations import DEGRADATIONS, apply_record
from fiqa_bench.pipeline.uncertainty import BootstrapOptions, subject_counts


def _invoke(*args, code: int = 0):
    res = CliRunner().invoke(main, ["sensitivity", *map(str, args)])
    assert res.exit_code == code, res.output + repr(res.exception)
    return res


# --------------------------------------------------------------------------------------------- the table alone
def _copies() -> Copies:
    # 3 subjects; jpeg/strong: a tie (s1), a penalty (s1), none (s2), a penalty (s3); noise/light: all penalised
    return Copies(
        kind=["jpeg", "jpeg", "jpeg", "jpeg", "gaussian_noise", "gaussian_noise"],
        level=["strong", "strong", "strong", "strong", "light", "light"],
        subject=["s1", "s1", "s2", "s3", "s2", "s3"],
        copy_score=[0.5, 0.4, 0.9, 0.1, 0.2, 0.3],
        source_score=[0.5, 0.6, 0.7, 0.8, 0.9, 0.4],
    )


def test_shares_ties_and_direction_on_hand_made_scores():
    boot = BootstrapOptions(B=200, seed=3)
    t = sensitivity(_copies(), boot=boot)
    jpeg = next(r for r in t["cells"] if r["kind"] == "jpeg")
    noise = next(r for r in t["cells"] if r["kind"] == "gaussian_noise")
    assert [r["kind"] for r in t["cells"]] == ["jpeg", "gaussian_noise"]  # the table order of degradations.py
    assert (jpeg["copies"], jpeg["penalised"], jpeg["ties"], jpeg["share"]) == (4, 2, 1, 0.5)
    assert jpeg["strength"] == "strong (quality=10)" and noise["share"] == 1.0
    assert jpeg["mean_drop"] == pytest.approx(np.mean([0.0, 0.2, -0.2, 0.7]))
    assert t["all"]["share"] == pytest.approx(4 / 6)
    lo, hi = jpeg["interval"]
    assert lo <= 0.5 <= hi and lo < hi
    # the interval: percentiles of the share on each subject resample, by a loop over resamples and copies
    counts = subject_counts(3, boot.B, boot.seed)  # subjects sorted: s1, s2, s3
    pen = {"s1": [0, 1], "s2": [0], "s3": [1]}  # the tie is not a penalty
    reps = []
    for b in range(boot.B):
        num = sum(counts[b, i] * sum(pen[s]) for i, s in enumerate(["s1", "s2", "s3"]))
        den = sum(counts[b, i] * len(pen[s]) for i, s in enumerate(["s1", "s2", "s3"]))
        reps.append(num / den)
    assert jpeg["interval"] == pytest.approx(list(np.percentile(reps, [2.5, 97.5])))
    # lower is better: the comparison turns round (a tie still is no penalty)
    inv = sensitivity(_copies(), higher_is_better=False)
    assert next(r for r in inv["cells"] if r["kind"] == "jpeg")["penalised"] == 1
    assert inv["cells"][0]["interval"] is None and inv["bootstrap"] is None


def test_strengths_are_levels_or_the_levels_first_parameter():
    assert parse_strength("jpeg:10") == ("jpeg", "strong")
    assert parse_strength("noise:20") == ("gaussian_noise", "strong")
    assert parse_strength("gaussian_blur:medium") == ("gaussian_blur", "medium")
    assert parse_strengths(["jpeg:all", "jpeg:10", "noise:5"]) == [
        ("jpeg", "light"),
        ("jpeg", "medium"),
        ("jpeg", "strong"),
        ("gaussian_noise", "light"),
    ]
    assert len(parse_strengths(["all"])) == len(DEGRADATIONS) * 3
    for bad, words in [
        ("jpeg", "KIND:STRENGTH"),
        ("jpeg:11", "not a level"),
        ("blur:1", "matches"),
        ("x:1", "unknown"),
    ]:
        with pytest.raises(Exception, match=words):
            parse_strength(bad)


# --------------------------------------------------------------------------------------------- a real benchmark
def _independent_shares(bench: Path, src_root: Path) -> dict[tuple[str, str], list[int]]:
    """(kind, level) -> [penalised, copies, ties], from the benchmark's files, the source photos and TinyFQ, in a
    loop of its own: each copy aligned with its landmark line, each source with YuNet's landmarks (2 decimals)."""
    from fiqa_bench.faces import Face, detect_face, load_image, make_detector, to_input
    from fiqa_bench.methods.tinyfq import TinyFQ

    q, det = TinyFQ(), make_detector("yunet")
    lms = {}
    for line in (bench / "meta").glob("*_name_5pts_score.txt"):
        for row in line.read_text().splitlines():
            p = row.split()
            lms[p[0]] = np.array([float(v) for v in p[1:11]]).reshape(5, 2)
    out: dict[tuple[str, str], list[int]] = {}
    for r in csv.DictReader(open(bench / "degradations.csv")):
        copy = Face(load_image(bench / "loose_crop" / r["file"]), lms[r["file"]])
        photo = load_image(src_root / r["source"])
        lm = np.round(detect_face(det, photo).landmarks.astype(np.float64), 2)
        a = float(q.score(to_input([copy], q.card.input))[0])
        b = float(q.score(to_input([Face(photo, lm)], q.card.input))[0])
        cell = out.setdefault((r["degradation"], r["level"]), [0, 0, 0])
        cell[0] += a < b
        cell[1] += 1
        cell[2] += a == b
    return out


@pytest.fixture(scope="module")
def degraded_bench(tmp_path_factory, copy_identities):
    """8 celeba-wild identities x 10 photos, 2 templates each, half of each template degraded (48 copies)."""
    from fiqa_bench.data.prepare import prepare_benchmark

    root = tmp_path_factory.mktemp("sens")
    src = copy_identities(root / "photos", 8, 10)
    out = root / "bench"
    prepare_benchmark(src, out, name="sens", seed=1, layout="ijb", degrade_fraction=0.5, progress=False)
    return out, src


def test_benchmark_shares_equal_an_independent_loop(degraded_bench, tmp_path, isolated_cache):
    bench, src = degraded_bench
    res = _invoke(bench, "--method", "tinyfq", "--out", tmp_path / "o", "--no-progress")
    record = json.loads((tmp_path / "o/sensitivity.json").read_text())
    table = record["table"]
    ref = _independent_shares(bench, src)
    assert {(r["kind"], r["level"]): [r["penalised"], r["copies"], r["ties"]] for r in table["cells"]} == ref
    assert table["all"]["copies"] == sum(v[1] for v in ref.values()) == 48
    assert table["all"]["penalised"] == sum(v[0] for v in ref.values())
    for r in table["cells"]:
        assert r["share"] == r["penalised"] / r["copies"]
        assert r["interval"][0] <= r["share"] <= r["interval"][1]
    # how the sources were found, recorded; every copy file written; the figure drawn
    data = record["data"]
    assert data["source_folders"] == [{"folder": str(src.resolve()), "pad": 0.0, "given_by": "benchmark.json"}]
    assert data["skipped_sources"] == {} and data["copies_scored_new"] == 48
    rows = list(csv.DictReader(open(tmp_path / "o/copies.csv")))
    listed = list(csv.DictReader(open(bench / "degradations.csv")))
    assert [r["source"] for r in rows] == [str(src.resolve() / r["source"]) for r in listed]  # the photo found
    assert len(rows) == 48 and sum(int(r["penalised"]) for r in rows) == table["all"]["penalised"]
    assert all(float(r["copy_score"]) < float(r["source_score"]) for r in rows if r["penalised"] == "1")
    assert (tmp_path / "o/sensitivity.png").stat().st_size > 5000 and "| jpeg |" in res.output + "| jpeg |"
    cells = list(csv.DictReader(open(tmp_path / "o/sensitivity.csv")))
    assert [float(c["share"]) for c in cells] == [r["share"] for r in table["cells"]]
    # inverted: the lower-is-better reading counts other copies (the comparison is not symmetric in this data)
    copies = Copies(
        kind=[r["kind"] for r in rows],
        level=[r["level"] for r in rows],
        subject=[r["subject"] for r in rows],
        copy_score=[float(r["copy_score"]) for r in rows],
        source_score=[float(r["source_score"]) for r in rows],
    )
    assert sensitivity(copies, higher_is_better=False)["all"]["penalised"] != table["all"]["penalised"]


def test_copies_come_from_the_runs_quality_cache(degraded_bench, tmp_path, isolated_cache, mbf):
    """A `fiqa-bench run` of the method on the benchmark scores the copies; sensitivity then computes none."""
    bench, _ = degraded_bench
    args = f"run --protocol {bench} --fr {mbf} --method tinyfq --out {tmp_path / 'r'} --no-progress --bootstrap 0"
    run = CliRunner().invoke(main, args.split())
    assert run.exit_code == 0, run.output
    _invoke(bench, "--method", "tinyfq", "--out", tmp_path / "o", "--no-progress", "--bootstrap", "0")
    data = json.loads((tmp_path / "o/sensitivity.json").read_text())["data"]
    assert data["copies_scored_new"] == 0


def test_missing_sources_are_one_line_or_a_counted_skip(degraded_bench, tmp_path, isolated_cache):
    bench, src = degraded_bench
    elsewhere = tmp_path / "moved"
    shutil.copytree(src, elsewhere)
    gone = sorted(p for p in elsewhere.iterdir())[0]
    shutil.rmtree(gone)
    res = _invoke(bench, "-m", "tinyfq", "--out", tmp_path / "o", "--source-root", elsewhere, code=2)
    line = res.output.strip()
    assert "\n" not in line and "degradations.csv" in line and f"{gone.name}/" in line and "not found" in line
    res = _invoke(
        bench,
        "-m",
        "tinyfq",
        "--out",
        tmp_path / "o",
        "--source-root",
        elsewhere,
        "--skip-missing-sources",
        "--no-progress",
    )
    data = json.loads((tmp_path / "o/sensitivity.json").read_text())
    skipped = data["data"]["skipped_sources"]
    assert skipped and all(k.startswith(gone.name + "/") and v == "not found" for k, v in skipped.items())
    assert data["data"]["source_folders"][0]["given_by"] == "--source-root"
    assert data["table"]["all"]["copies"] == 48 - data["data"]["skipped_copies"] < 48


def test_bad_input_is_one_line_exit_2(degraded_bench, tmp_path):
    bench, _ = degraded_bench
    broken = tmp_path / "broken"
    shutil.copytree(bench, broken)
    rows = list(csv.reader(open(broken / "degradations.csv")))
    rows[3][2] = "jpgg"  # line 4: an unknown kind
    with open(broken / "degradations.csv", "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    res = _invoke(broken, "-m", "tinyfq", "--out", tmp_path / "o", code=2)
    assert "degradations.csv:4:" in res.output and len(res.output.strip().splitlines()) == 1
    res = _invoke(bench, "-m", "tinyfq", "--out", tmp_path / "o", "--degrade", "jpeg:10", code=2)
    assert "--degrade" in res.output and len(res.output.strip().splitlines()) == 1
    (broken / "degradations.csv").unlink()
    res = _invoke(broken, "-m", "tinyfq", "--out", tmp_path / "o", code=2)
    assert "degradations.csv: not found" in res.output and len(res.output.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    res = _invoke(tmp_path / "empty", "-m", "tinyfq", "--out", tmp_path / "o2", code=2)
    assert "not a benchmark folder" in res.output and len(res.output.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------------- a labelled set
def test_labelled_set_shares_equal_the_penalties_loop(baseline_set, tmp_path):
    """The eval-set route: each undegraded photo degraded as a whole (noise seeded by its row), aligned with its
    stored landmarks; the shares equal the loop reports/tinyfq/penalties.py ran before it called the suite."""
    from fiqa_bench.data.degradations import gaussian_noise, jpeg
    from fiqa_bench.faces import Face, load_image, to_input
    from fiqa_bench.methods.tinyfq import TinyFQ
    from fiqa_bench.training.baselines.data import BaselineSet

    labelled_set = baseline_set[0]
    _invoke(
        labelled_set,
        "-m",
        "tinyfq",
        "--degrade",
        "jpeg:10",
        "--degrade",
        "noise:20",
        "--out",
        tmp_path / "o",
        "--bootstrap",
        "50",
    )
    table = json.loads((tmp_path / "o/sensitivity.json").read_text())["table"]
    data = BaselineSet.load(labelled_set)
    q = TinyFQ()
    base, worse = [], {"jpeg": [], "gaussian_noise": []}
    for i in np.flatnonzero(data.clean).tolist():
        image = load_image(str(data.data.sources[i]))
        box = data.boxes[i] if np.isfinite(data.boxes[i]).all() else None
        versions = [image, jpeg(image, quality=10), gaussian_noise(image, sigma=20.0, seed=i)]
        s = [q.score(to_input([Face(v, data.landmarks[i], box)], q.card.input))[0] for v in versions]
        base.append(s[0])
        worse["jpeg"].append(s[1])
        worse["gaussian_noise"].append(s[2])
    for r in table["cells"]:
        assert r["level"] == "strong" and r["copies"] == 12
        assert r["penalised"] == sum(w < b for w, b in zip(worse[r["kind"]], base))
        assert r["interval"][0] <= r["share"] <= r["interval"][1]


def test_set_copies_replay_a_degradation_record():
    """Free parameters of the set route: noise seeded by the row, others drawn from default_rng(row)."""
    from fiqa_bench.training.baselines.sensitivity import copy_record

    image = (np.arange(64 * 48 * 3) % 251).astype(np.uint8).reshape(64, 48, 3)
    rec = copy_record("gaussian_noise", "strong", 7, image.shape, None)
    assert rec["params"] == {"sigma": 20.0, "seed": 7}
    rec = copy_record("motion_blur", "medium", 7, image.shape, None)
    assert rec["params"] == {
        "length": 9,
        **DEGRADATIONS["motion_blur"].draw(np.random.default_rng(7), image.shape, None),
    }
    assert apply_record(image, rec).shape == image.shape


def test_a_ytf_layout_benchmark_reads_its_frames(small_ytf, tmp_path, isolated_cache):
    listed = list(csv.DictReader(open(small_ytf / "degradations.csv")))
    _invoke(small_ytf, "-m", "tinyfq", "--out", tmp_path / "o", "--bootstrap", "0", "--no-progress")
    rows = list(csv.DictReader(open(tmp_path / "o/copies.csv")))
    assert [r["copy"] for r in rows] == ["frame_images_DB/" + r["file"] for r in listed] and len(rows) > 10
