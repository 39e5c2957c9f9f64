"""Per-group metrics (``fiqa-bench groups``): each group's TPR@FPR and FNM-EDC equal a loop written here from the
run's ``.npz`` and the benchmark's own files (face list, ``degradations.csv``, a user's CSV); the largest gap and its
paired interval equal a bootstrap written out here; bad CSVs are refused with their file and line."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from _reference import fnm_edc_pauc_loop, kfold_accuracy_loop, tpr_at_fpr_conservative
from fiqa_bench.analyses.groups import csv_labels, groups_of_run
from fiqa_bench.cli.main import main
from fiqa_bench.errors import BadResultsFile, FiqaBenchError
from fiqa_bench.pipeline.runner import RunConfig, run
from fiqa_bench.results.groups_file import read_groups
from fiqa_bench.results.record import read_raw

B = 60  # resamples in the tests (the written-out bootstrap below is a slow loop)


# ------------------------------------------------------------------------------------------ independent loops
def _face_names(bench: Path) -> list[str]:
    (faces,) = (bench / "meta").glob("*_face_tid_mid.txt")
    return [line.split()[0] for line in faces.read_text().splitlines() if line.strip()]


def _pair_groups_loop(raw, label_of_row, baseline=None) -> list:
    """Each pair's group: the one label of every kept image of both its templates, else None; with a baseline, a
    template of one label against a template of the baseline is that label's."""
    per_template: dict[int, set] = {}
    for row, t in zip(raw["kept_rows"].tolist(), raw["kept_group"].tolist()):
        per_template.setdefault(int(t), set()).add(label_of_row(int(row)))
    out = []
    for a, b in zip(raw["pair_a"].tolist(), raw["pair_b"].tolist()):
        sa, sb = per_template[int(a)], per_template[int(b)]
        if len(sa) == 1 and len(sb) == 1 and None not in sa | sb and baseline is not None and baseline in sa | sb:
            rest = (sa | sb) - {baseline}
            out.append(next(iter(rest)) if rest else baseline)
        else:
            out.append(next(iter(sa)) if len(sa) == 1 and sa == sb and None not in sa else None)
    return out


def _subjects_loop(raw) -> tuple[list[int], list[int]]:
    subject = {int(t): int(s) for t, s in zip(raw["template_ids"].tolist(), raw["template_subject"].tolist())}
    return [subject[int(a)] for a in raw["pair_a"]], [subject[int(b)] for b in raw["pair_b"]]


def _tpr_or_nan(scores, labels, target) -> float:
    if sum(1 for y in labels if int(y) == 1) == 0:
        return math.nan
    v = tpr_at_fpr_conservative(scores, labels, target)
    return math.nan if v is None else v


def _fnm_pauc_or_nan(scores, labels, quality, limit) -> float:
    mated = [i for i, y in enumerate(labels) if int(y) == 1]
    if not mated:  # a resample needs mated comparisons only (the threshold is theirs)
        return math.nan
    return fnm_edc_pauc_loop([scores[i] for i in mated], [quality[i] for i in mated], 0.05, limit)[1]


def _gap_loop(raw, pair_group, names: list[str], column: str, seed: int, level: float = 0.95):
    """(best group, worst group, gap, [low, high]) of ``tpr@X`` (higher is better) or ``fnm@X`` (FNM-EDC pAUC up to
    X, lower is better): point values from the loops, the interval from B subject resamples (seeded like the suite's
    bootstrap) written out pair by pair, both groups on each one."""
    s, y, q = raw["pair_scores"], raw["pair_labels"], raw["pair_quality"]
    sa, sb = _subjects_loop(raw)
    what, x = column.split("@")
    sign = 1.0 if what == "tpr" else -1.0

    def value(ss, yy, qq) -> float:
        return _tpr_or_nan(ss, yy, float(x)) if what == "tpr" else _fnm_pauc_or_nan(ss, yy, qq, float(x))

    point = {}
    for g in names:
        idx = [i for i, pg in enumerate(pair_group) if pg == g]
        point[g] = value([s[i] for i in idx], [y[i] for i in idx], [q[i] for i in idx])
    hi = max(point, key=lambda g: (sign * point[g], g))
    lo = min(point, key=lambda g: (sign * point[g], g))
    n_subjects = len(raw["subjects"])
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(B):
        c = np.bincount(rng.integers(0, n_subjects, size=n_subjects), minlength=n_subjects)
        per = {}
        for g in (hi, lo):
            ss, yy, qq = [], [], []
            for i, pg in enumerate(pair_group):
                if pg != g:
                    continue
                w = c[sa[i]] if int(y[i]) == 1 else c[sa[i]] * c[sb[i]]
                ss += [s[i]] * int(w)
                yy += [y[i]] * int(w)
                qq += [q[i]] * int(w)
            per[g] = value(ss, yy, qq)
        diffs.append(sign * (per[hi] - per[lo]))
    d = np.array(diffs)
    d = d[np.isfinite(d)]
    low, high = np.percentile(d, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return hi, lo, abs(point[hi] - point[lo]), [float(low), float(high)]


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def groups_bench(copy_identities, tmp_path_factory) -> Path:
    """IJB layout from real photos: 12 celeba-wild identities x 8 photos, 2 templates each, 30% of each template
    degraded (``prepare --degrade``): enough impostors in each half of the identities for TPR@FPR=1e-1."""
    from fiqa_bench.data.prepare import prepare_benchmark

    src = copy_identities(tmp_path_factory.mktemp("groups-src"), 12, 8)
    out = tmp_path_factory.mktemp("groups-bench") / "twelve"
    prepare_benchmark(src, out, name="twelve", seed=0, layout="ijb", degrade_fraction=0.3, progress=False)
    return out


@pytest.fixture(scope="module")
def random_run(groups_bench, shared, tmp_path_factory) -> Path:
    """A real top1 run of ``random`` on the benchmark with degraded copies (its kept images: degraded or not)."""
    root = tmp_path_factory.mktemp("groups-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIQA_BENCH_CACHE", str(root / "cache"))
        path, _ = run(
            RunConfig(
                protocol=str(groups_bench),
                backbone=f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}",
                method="random",
                out=str(root / "runs"),
                progress=False,
                bootstrap=B,
            )
        )
    return Path(path)


def _halves_csv(bench: Path, path: Path, column: str = "half") -> dict[str, str]:
    """A CSV keyed by image path (relative to the benchmark root): identities of the first half ``a``, the rest
    ``b``; returns {image path: group}."""
    names = _face_names(bench)
    identities = sorted({n.split("_")[0] for n in names})
    first = set(identities[: len(identities) // 2])
    groups = {f"loose_crop/{n}": ("a" if n.split("_")[0] in first else "b") for n in names}
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", column, "camera"])
        for image, g in groups.items():
            w.writerow([image, g, "x"])
    return groups


# ------------------------------------------------------------------------------------------ degradations


@pytest.mark.shared
def test_degradation_groups_equal_a_loop_over_the_benchmark_files(random_run, groups_bench):
    raw = read_raw(random_run)
    names = _face_names(groups_bench)
    kind = {}
    with (groups_bench / "degradations.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            kind[row["file"]] = (row["degradation"], f"{row['degradation']}:{row['level']}")
    assert kind, "the benchmark has degraded copies"
    # the .npz's kept rows are rows of the benchmark's face list
    assert [str(p) for p in raw["kept_paths"]] == [f"loose_crop/{names[r]}" for r in raw["kept_rows"]]
    obj = groups_of_run(random_run, "degradation")
    by_name = {g["name"]: g for g in obj["groupings"]}
    assert set(by_name) == {"degradation", "degradation_level"}
    s, y, q = raw["pair_scores"], raw["pair_labels"], raw["pair_quality"]
    for grouping, which in (("degradation", 0), ("degradation_level", 1)):

        def label(row: int, which=which) -> str:
            return kind[names[row]][which] if names[row] in kind else "none"

        expected = _pair_groups_loop(raw, label, "none")
        got = {g["name"]: g for g in by_name[grouping]["groups"]}
        assert set(got) == {g for g in expected if g is not None}
        assert by_name[grouping]["counts"]["pairs_in_no_group"] == sum(g is None for g in expected)
        assert by_name[grouping]["counts"]["images_unlabelled"] == 0
        for name, g in got.items():
            idx = [i for i, pg in enumerate(expected) if pg == name]
            gs, gy = [float(s[i]) for i in idx], [int(y[i]) for i in idx]
            assert (g["pairs"], g["genuine"], g["impostor"]) == (len(idx), sum(gy), len(idx) - sum(gy))
            assert g["images"] == sum(1 for n in names if (kind[n][which] if n in kind else "none") == name)
            kept_labels: dict[int, set] = {}
            for row, t in zip(raw["kept_rows"].tolist(), raw["kept_group"].tolist()):
                kept_labels.setdefault(t, set()).add(label(row))
            assert g["templates"] == sum(1 for labels in kept_labels.values() if labels == {name})
            tpr = g["metrics"]["tpr_at_fpr"]
            if "unavailable" in tpr:
                assert sum(gy) == 0 or sum(gy) == len(gy)
                continue
            assert tpr["values"] == {k: tpr_at_fpr_conservative(gs, gy, float(k)) for k in tpr["values"]}
            fnm = g["metrics"]["edc_fnm"]
            mated = [i for i in idx if int(y[i]) == 1]
            for limit in fnm["pauc"]:
                thr, area = fnm_edc_pauc_loop(s[mated], q[mated], 0.05, float(limit))
                assert fnm["threshold"] == thr and fnm["pauc"][limit] == pytest.approx(area, abs=1e-12)
    # the undegraded images form their own group, and the largest group of this run is theirs
    assert "none" in {g["name"] for g in by_name["degradation"]["groups"]}


@pytest.mark.shared
def test_a_degradation_grouping_needs_a_prepared_benchmark(random_run, groups_bench, tmp_path):
    """``--by degradation`` on a benchmark without degradations.csv: one line naming the file."""
    import shutil

    copy = tmp_path / "mini"
    shutil.copytree(groups_bench, copy)
    (copy / "degradations.csv").unlink()
    with pytest.raises(FiqaBenchError, match=r"degradations\.csv: no such file; --by degradation needs"):
        groups_of_run(random_run, "degradation", bench=str(copy))
    (copy / "degradations.csv").write_text(
        "file,source,degradation,level,params,landmarks\nnot-an-image.jpg,x,b,c,{},d\n"
    )
    with pytest.raises(FiqaBenchError, match=r"degradations\.csv:2: 'not-an-image\.jpg' is not an image"):
        groups_of_run(random_run, "degradation", bench=str(copy))


# ------------------------------------------------------------------------------------------ a user's CSV, gaps


@pytest.mark.shared
def test_csv_groups_gap_and_interval_equal_a_written_out_bootstrap(random_run, groups_bench, tmp_path):
    groups_of_image = _halves_csv(groups_bench, tmp_path / "halves.csv")
    raw = read_raw(random_run)
    names = _face_names(groups_bench)
    expected = _pair_groups_loop(raw, lambda row: groups_of_image[f"loose_crop/{names[row]}"])
    obj = groups_of_run(random_run, f"{tmp_path / 'halves.csv'}:half")
    assert obj["by"] == "halves.csv:half" and [g["name"] for g in obj["groupings"]] == ["half"]
    (grouping,) = obj["groupings"]
    got = {g["name"]: g for g in grouping["groups"]}
    assert set(got) == {"a", "b"}
    s, y = raw["pair_scores"], raw["pair_labels"]
    for name, g in got.items():
        idx = [i for i, pg in enumerate(expected) if pg == name]
        values = g["metrics"]["tpr_at_fpr"]["values"]
        assert values == {k: tpr_at_fpr_conservative(s[idx], y[idx], float(k)) for k in values}
    # cross-half comparisons belong to no group (impostors only: an identity is in one half)
    assert grouping["counts"]["pairs_in_no_group"] == sum(g is None for g in expected) > 0
    for title, column in (("TPR@FPR=1e-1", "tpr@0.1"), ("FNM-EDC pAUC@0.20", "fnm@0.2")):
        gap = next(x for x in grouping["gaps"] if x["title"] == title)
        hi, lo, value, interval = _gap_loop(raw, expected, ["a", "b"], column, seed=0)
        assert (gap["high"], gap["low"]) == (hi, lo)
        assert gap["value"] == pytest.approx(value, abs=1e-12) and gap["value"] >= 0
        assert gap["interval"] == pytest.approx(interval, abs=1e-12)
        assert gap["significant"] == (interval[0] > 0 or interval[1] < 0)
    # each group's interval is its own percentile interval of the same resamples
    assert got[hi]["metrics"]["tpr_at_fpr"]["bootstrap"]["B"] == B


@pytest.mark.shared
def test_cli_writes_a_groups_file_and_figures_that_validate(random_run, groups_bench, tmp_path):
    _halves_csv(groups_bench, tmp_path / "halves.csv")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main, ["groups", str(random_run), "--by", str(tmp_path / "halves.csv"), "--out", str(out), "--bootstrap", "20"]
    )
    assert res.exit_code == 0, res.output
    stem = f"{random_run.stem}__halves.csv"
    obj = read_groups(out / f"{stem}.groups.json")
    assert [g["name"] for g in obj["groupings"]] == ["half", "camera"]  # every group column without :COLUMN
    assert obj["bootstrap"]["B"] == 20
    for name in ("half", "camera"):
        assert (out / f"{stem}__{name}.png").stat().st_size > 5000 and (out / f"{stem}__{name}.svg").is_file()
    assert "gap TPR@FPR=1e-1:" in res.output
    # a tampered file is refused where it is loaded, naming the field
    bad = json.loads((out / f"{stem}.groups.json").read_text())
    bad["groupings"][0]["groups"][0]["metrics"]["tpr_at_fpr"]["values"]["1e-1"] = "high"
    (tmp_path / "bad.groups.json").write_text(json.dumps(bad))
    with pytest.raises(BadResultsFile, match=r"groupings\[0\]\.groups\[0\]\.metrics\.tpr_at_fpr\['1e-1'\]"):
        read_groups(tmp_path / "bad.groups.json")


# ------------------------------------------------------------------------------------------ bad CSVs (no data)

PATHS = ["loose_crop/a_1.jpg", "loose_crop/a_2.jpg", "loose_crop/b_1.jpg"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"x\.csv:1: empty"),
        ("path,sex\n", r"x\.csv:1: no 'image' column"),
        ("image\n", r"x\.csv:1: no group column besides 'image'"),
        ("image,sex,sex\n", r"x\.csv:1: column names must be non-empty and distinct"),
        ("image,sex\nloose_crop/a_1.jpg,f\nloose_crop/a_2.jpg\n", r"x\.csv:3: 1 fields, the header has 2"),
        ("image,sex\nloose_crop/a_1.jpg,f\nloose_crop/zz.jpg,m\n", r"x\.csv:3: 'loose_crop/zz.jpg' is not an image"),
        (
            "image,sex\na_1.jpg,f\nloose_crop/a_1.jpg,f\n",
            r"x\.csv:3: loose_crop/a_1.jpg is listed twice \(first on line 2\)",
        ),
        ("image,sex\na_1.jpg,f\na_2.jpg, \n", r"x\.csv:3: empty value in column 'sex'"),
        ("image,sex\na_1.jpg,f\na_2.jpg,f\n", r"x\.csv: 1 of 3 images of the benchmark are not listed \(first: "),
        ('image,sex\n"a_1.jpg,f\n', r"x\.csv: not a CSV file"),
    ],
)
def test_bad_csv_is_refused_naming_file_and_line(tmp_path, text, message):
    (tmp_path / "x.csv").write_text(text)
    with pytest.raises(FiqaBenchError, match=message):
        csv_labels(tmp_path / "x.csv", PATHS)


def test_csv_keys_and_missing_images(tmp_path):
    f = tmp_path / "x.csv"
    f.write_bytes(b"image,sex,age\na_1.jpg,f,young\nloose_crop/b_1.jpg,m,old\n")
    # keyed by the path relative to the benchmark root or by the face list's name; unlisted images counted
    sex, age = csv_labels(f, PATHS, skip_missing=True)
    assert (sex.name, sex.values, sex.unlabelled) == ("sex", ["f", None, "m"], 1)
    assert age.values == ["young", None, "old"]
    (only,) = csv_labels(f, PATHS, "age", skip_missing=True)
    assert only.name == "age"
    with pytest.raises(FiqaBenchError, match=r"x\.csv:1: no group column 'height' \(columns: sex, age\)"):
        csv_labels(f, PATHS, "height", skip_missing=True)
    f.write_bytes(b"image,sex\n\xff\xfe,f\n")
    with pytest.raises(FiqaBenchError, match=r"x\.csv:2: not UTF-8 text"):
        csv_labels(f, PATHS)


@pytest.mark.shared
def test_cli_bad_csv_is_one_line_exit_2(random_run, groups_bench, tmp_path):
    (tmp_path / "g.csv").write_text("image,sex\nloose_crop/nobody.jpg,f\n")
    res = CliRunner().invoke(
        main, ["groups", str(random_run), "--by", str(tmp_path / "g.csv"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"error: {tmp_path / 'g.csv'}:2: 'loose_crop/nobody.jpg' is not an image of the benchmark"
    ]
    # images the CSV does not list: refused unless --missing skip, then counted
    names = _face_names(groups_bench)
    (tmp_path / "g.csv").write_text("image,sex\n" + "".join(f"{n},f\n" for n in names[1:]))
    res = CliRunner().invoke(
        main, ["groups", str(random_run), "--by", str(tmp_path / "g.csv"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and f"1 of {len(names)} images of the benchmark are not listed" in res.output
    res = CliRunner().invoke(
        main,
        ["groups", str(random_run), "--by", str(tmp_path / "g.csv"), "--out", str(tmp_path / "o"), "--missing", "skip"],
    )
    assert res.exit_code == 0, res.output
    assert "1 images unlabelled" in res.output


# ------------------------------------------------------------------------------------------ the leaderboard


@pytest.mark.shared
def test_leaderboard_reads_groups_files_beside_the_runs(random_run, groups_bench, tmp_path):
    import shutil
    import warnings

    from fiqa_bench.analyses.groups import groups_stem, write_groups
    from fiqa_bench.metrics.base import get_metric
    from fiqa_bench.writers.leaderboard import build_data, collect

    runs = tmp_path / "runs"
    shutil.copytree(random_run.parent, runs)
    obj = groups_of_run(runs / random_run.name, "degradation", bootstrap=10)
    write_groups(obj, runs, groups_stem(random_run, obj["by"]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the groups file is no results file: not warned about, not a run
        data = build_data(collect([runs]))
    (board,) = data["boards"]
    (row,) = board["rows"]
    names = [f"{g['name']}={x['name']}" for g in obj["groupings"] for x in g["groups"]]
    assert data["filters"]["group"] == sorted(names) and sorted(row["groups"]) == sorted(names)
    none = next(x for x in obj["groupings"][0]["groups"] if x["name"] == "none")
    cell = row["groups"]["degradation=none"]["tpr_at_fpr:1e-1"]
    assert cell["v"] == none["metrics"]["tpr_at_fpr"]["values"]["1e-1"]
    assert [cell["lo"], cell["hi"]] == none["metrics"]["tpr_at_fpr"]["intervals"]["1e-1"]
    assert cell["text"] == get_metric("tpr_at_fpr").format(cell["v"])
    # a groups file of a run that is not there is left out with a warning; a tampered one is named
    (runs / "other__x.groups.json").write_text(
        json.dumps({**obj, "results": {"file": "gone.json", "sha256": "0" * 64}})
    )
    with pytest.warns(UserWarning, match=r"other__x\.groups\.json: its results file \(gone\.json\) is not among"):
        collect([runs])
    (runs / "other__x.groups.json").write_text(json.dumps({**obj, "version": 99}))
    with pytest.raises(BadResultsFile, match=r"other__x\.groups\.json: version 99 is not one"):
        collect([runs])


# ------------------------------------------------------------------------------------------ membership (no data)


def test_membership_by_kept_images_both_sides_and_the_baseline():
    from fiqa_bench.analyses.groups import pair_groups

    # images 0-5; templates 10 (kept: 0), 11 (kept: 1, 2), 12 (kept: 3), 13 (kept: 4), 14 (kept: 5, unlabelled)
    labels = ["blur", "none", "jpeg", "none", "blur", None]
    kept_rows, kept_group = np.array([0, 1, 2, 3, 4, 5]), np.array([10, 11, 11, 12, 13, 14])
    a = np.array([10, 10, 12, 10, 11, 14, 12])
    b = np.array([13, 12, 13, 11, 12, 10, 12])
    got, counts, templates = pair_groups(labels, kept_rows, kept_group, a, b)
    assert got == ["blur", None, None, None, None, None, "none"]
    assert counts == {"templates_mixed": 1, "templates_unlabelled": 1, "pairs_in_no_group": 5}
    assert templates == {"blur": 2, "none": 1}
    # with a baseline: a template of g against one of the baseline is g's; mixed and unlabelled stay out
    got, _, _ = pair_groups(labels, kept_rows, kept_group, a, b, baseline="none")
    assert got == ["blur", "blur", "blur", None, None, None, "none"]


def test_a_metric_a_group_cannot_give_is_unavailable_with_its_reason():
    from fiqa_bench.analyses.groups import group_metrics
    from fiqa_bench.metrics.base import MetricOptions, PairData

    # k-fold pairs: group "x" lies in fold 0 only (accuracy needs two folds), group "y" in both
    data = PairData(
        scores=np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.3], np.float32),
        labels=np.array([1, 0, 1, 0, 1, 0], np.int8),
        folds=np.array([0, 0, 0, 1, 1, 1]),
        quality=np.full(6, np.nan),
        subject_a=np.array([0, 0, 1, 1, 2, 2]),
        subject_b=np.array([0, 1, 1, 2, 2, 0]),
    )
    x, y = group_metrics(data, ["x", "x", "y", "y", "y", "y"], ["accuracy"], MetricOptions())
    assert (x.name, y.name) == ("x", "y")
    assert x.metrics["accuracy"]["unavailable"].startswith("not computable on this group's comparisons: k-fold")
    ref = kfold_accuracy_loop(data.scores[2:], data.labels[2:], data.folds[2:])
    assert y.metrics["accuracy"]["mean"] == ref["mean"] and y.sizes["pairs"] == 4
