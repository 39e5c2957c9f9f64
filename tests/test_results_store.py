"""The results store: a malformed results file is one line naming the file and the field, left out, counted; the
rest of the folder still gives its report, leaderboard and comparison. Fixtures are committed results files
(reports/) copied into tmp_path and corrupted."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main
from fiqa_bench.errors import BadResultsFile
from fiqa_bench.results.fields import Interval, Map, Num, Obj, Text, describe, field_path
from fiqa_bench.results.record import validate
from fiqa_bench.results.store import comparable_key, load_runs, method_label, null_reason, pairing_key

REPORTS = Path(__file__).resolve().parents[1] / "reports"
LFW = REPORTS / "lfw"  # two k-fold runs (dlib, mobilefacenet) with their .npz: the valid rest of every folder
IJB = REPORTS / "celeba-eval" / "ijb" / "celeba-lfw-eval__blur__dlib__top1__3fc76bb6.json"  # a TPR@FPR run
LFW_RUN = LFW / "lfw__none__dlib__top1__e59242cd.json"
SCHEMA_LINE = (
    "schema_version 1 is not 2 (this fiqa-bench reads version 2; rerun, or `fiqa-bench rescore` cannot "
    "help an old file)"
)


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _set(*keys_value):
    """A corruption: set the field at ``keys`` to ``value``."""
    *keys, last, value = keys_value

    def corrupt(d):
        for k in keys:
            d = d[k]
        d[last] = value

    return corrupt


def _drop(*keys):
    def corrupt(d):
        for k in keys[:-1]:
            d = d[k]
        del d[keys[-1]]

    return corrupt


#: kind -> (the committed file it starts from, the corruption (None: not JSON at all), the reason the line gives)
KINDS = {
    "string-metric": (
        IJB,
        _set("metrics", "tpr_at_fpr", "values", "1e-3", "abc"),
        "metrics.tpr_at_fpr['1e-3'] must be a fraction in [0, 1] or null, not a string ('abc')",
    ),
    "string-metric-object": (
        IJB,
        _set("metrics", "tpr_at_fpr", "values", "abc"),
        "metrics.tpr_at_fpr.values must be an object, not a string ('abc')",
    ),
    "negative-count": (LFW_RUN, _set("counts", "impostor", -3), "counts.impostor = -3 is not a non-negative integer"),
    "not-json": (
        LFW_RUN,
        None,
        "not readable as JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
    ),
    "interval": (
        LFW_RUN,
        _set("metrics", "accuracy", "intervals", "mean", [0.99, 0.98]),
        "metrics.accuracy.intervals.mean = [0.99, 0.98] is not an interval: low > high",
    ),
    "nan": (
        LFW_RUN,
        _set("metrics", "accuracy", "std", math.nan),
        "metrics.accuracy.std = nan is not a fraction in [0, 1] or null",
    ),
    "missing-field": (LFW_RUN, _drop("method", "name"), "method.name is missing (expected a non-empty string)"),
    "schema-version": (LFW_RUN, _set("schema_version", 1), SCHEMA_LINE),
}


def _folder(tmp_path: Path, kinds, with_npz: bool = False) -> tuple[Path, dict[str, str]]:
    """The committed LFW runs plus one bad file per kind (``with_npz``: each beside a copy of its .npz, as a run
    writes it; else alone, as a stray file); returns the folder and {bad file name: reason}."""
    folder = tmp_path / "results"
    folder.mkdir()
    for p in LFW.glob("*.json"):
        shutil.copy(p, folder / p.name)
        shutil.copy(p.with_suffix(".npz"), folder / p.with_suffix(".npz").name)
    bad = {}
    for kind in kinds:
        source, corrupt, reason = KINDS[kind]
        name = f"zz-{kind}.json"
        if corrupt is None:
            (folder / name).write_text("{not json")
        else:
            d = _load(source)
            corrupt(d)
            (folder / name).write_text(json.dumps(d))  # NaN written as the token NaN, as Python's json reads it
        if with_npz:
            shutil.copy(source.with_suffix(".npz"), (folder / name).with_suffix(".npz"))
        bad[name] = reason
    return folder, bad


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """Report, leaderboard and comparison of the valid runs alone: what a folder with a bad file must still give."""
    tmp = tmp_path_factory.mktemp("clean")
    folder, _ = _folder(tmp, [])
    runner = CliRunner()
    assert runner.invoke(main, ["report", str(folder), "--out", str(tmp / "report")]).exit_code == 0
    assert runner.invoke(main, ["leaderboard", str(folder), "--out", str(tmp / "site")]).exit_code == 0
    res = runner.invoke(main, ["compare", str(folder)])
    assert res.exit_code == 0 and not res.stderr
    return {
        "report.md": (tmp / "report" / "report.md").read_text(),
        "compare": res.stdout,
        "index.html": (tmp / "site" / "index.html").read_text(),
    }


def _check_commands(tmp_path: Path, kinds, clean, with_npz: bool) -> None:
    folder, bad = _folder(tmp_path, kinds, with_npz)
    n = len(bad)
    count = f"{n} results file{'s' if n != 1 else ''} skipped"

    def lines(root: Path) -> list[str]:
        return [f"skipped {root / name}: {reason}" for name, reason in sorted(bad.items())] + [count]

    runner = CliRunner()
    res = runner.invoke(main, ["report", str(folder), "--out", str(tmp_path / "report")])
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines() == lines(folder)
    assert res.stdout.splitlines() == [str(tmp_path / "report" / "report.md"), str(tmp_path / "report" / "report.html")]
    assert (tmp_path / "report" / "report.md").read_text() == clean["report.md"]

    res = runner.invoke(main, ["leaderboard", str(folder), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines() == lines(folder.resolve())  # the leaderboard names files by their full path
    assert res.stdout.startswith(f"leaderboard: {tmp_path / 'site' / 'index.html'} (")
    assert (tmp_path / "site" / "index.html").read_text() == clean["index.html"]

    res = runner.invoke(main, ["compare", str(folder)])
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines() == lines(folder)
    assert res.stdout == clean["compare"]


@pytest.mark.parametrize("kind", ["string-metric", "negative-count", "not-json"])
def test_one_bad_file_is_one_line_and_the_rest_still_gives_report_leaderboard_and_comparison(kind, tmp_path, clean):
    _check_commands(tmp_path, [kind], clean, with_npz=False)


def test_a_bad_file_of_every_kind_in_one_folder(tmp_path, clean):
    _check_commands(tmp_path, list(KINDS), clean, with_npz=True)


def test_nothing_valid_left_is_exit_2_after_the_lines(tmp_path):
    folder = tmp_path / "only-bad"
    folder.mkdir()
    d = _load(LFW_RUN)
    d["counts"]["genuine"] = -1
    (folder / "bad.json").write_text(json.dumps(d))
    res = CliRunner().invoke(main, ["report", str(folder)])
    assert res.exit_code == 2
    assert res.stderr.splitlines() == [
        f"skipped {folder / 'bad.json'}: counts.genuine = -1 is not a non-negative integer",
        "1 results file skipped",
        f"error: {folder}: no results files found (looked for *.json with schema_version, and for costs.json)",
    ]
    res = CliRunner().invoke(main, ["leaderboard", str(folder), "--out", str(tmp_path / "site")])
    assert res.exit_code == 2 and res.stderr.splitlines()[1:] == [
        "1 results file skipped",
        f"error: no results files under {folder}",
    ]


def test_compare_skips_a_run_whose_npz_is_not_its_own(tmp_path, clean):
    folder, _ = _folder(tmp_path, [])
    other = _load(LFW_RUN)
    (folder / "zz-other.json").write_text(json.dumps(other))
    shutil.copy(LFW / "lfw__none__onnx-mobilefacenet.onnx__top1__35ca83cc.npz", folder / "zz-other.npz")
    res = CliRunner().invoke(main, ["compare", str(folder)])
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines() == [
        f"skipped {folder / 'zz-other.json'}: {folder / 'zz-other.npz'}: sha256 differs from the one its results file "
        "records (changed after the run)",
        "1 results file skipped",
    ]
    assert res.stdout == clean["compare"]


def test_library_callers_get_an_error_naming_file_and_field(tmp_path):
    folder, bad = _folder(tmp_path, ["negative-count"])
    with pytest.raises(BadResultsFile) as info:
        load_runs([folder])
    assert str(info.value) == f"{folder / 'zz-negative-count.json'}: counts.impostor = -3 is not a non-negative integer"
    assert info.value.problem == bad["zz-negative-count.json"]
    skipped = []
    runs = load_runs([folder], on_bad=skipped.append)
    assert [r.path.name for r in runs] == sorted(p.name for p in LFW.glob("*.json"))
    assert [(s.path.name, s.reason) for s in skipped] == list(bad.items())


# ------------------------------------------------------------------------------------------ the validator


def _problems(source: Path, corrupt) -> list[str]:
    d = _load(source)
    corrupt(d)
    return validate(d)


@pytest.mark.parametrize("kind", [k for k, (_, corrupt, _) in KINDS.items() if corrupt is not None])
def test_validator_names_the_field(kind):
    source, corrupt, reason = KINDS[kind]
    assert _problems(source, corrupt) == [reason]


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (_set("counts", "pairs", 1.5), "counts.pairs must be a non-negative integer, not a number (1.5)"),
        (
            _set("counts", "skipped_reasons", "bad-image", -1),
            "counts.skipped_reasons['bad-image'] = -1 is not a non-negative integer",
        ),
        (
            _set("metrics", "tpr_at_fpr", "values", "1e-1", 93.2),
            "metrics.tpr_at_fpr['1e-1'] = 93.2 is not a fraction in [0, 1] or null",
        ),
        (
            _set("metrics", "tpr_at_fpr", "values", "1e-1", True),
            "metrics.tpr_at_fpr['1e-1'] must be a fraction in [0, 1] or null, not a boolean (true)",
        ),
        (
            _set("metrics", "tpr_at_fpr", "values", "often", 0.5),
            "metrics.tpr_at_fpr.values key 'often' is not an FPR like '1e-3'",
        ),
        (
            _set("metrics", "tpr_at_fpr", "detail", "1e-2", "tpr", -0.1),
            "metrics.tpr_at_fpr.detail['1e-2'].tpr = -0.1 is not a fraction in [0, 1] or null",
        ),
        (
            _set("metrics", "tpr_at_fpr", "intervals", "1e-1", [0.5]),
            "metrics.tpr_at_fpr.intervals['1e-1'] = [0.5] is not [low, high] with low <= high, "
            "each a fraction in [0, 1]",
        ),
        (
            _set("metrics", "edc_fnm", "pauc", "0.20", 1.5),
            "metrics.edc_fnm['0.20'] = 1.5 is not a fraction in [0, 1] or null",
        ),
        (
            _set("metrics", "edc_fnm", "pauc", "0.20", math.inf),
            "metrics.edc_fnm.pauc['0.20'] = inf is not a finite number",
        ),
        (_set("metrics", "edc_fm", "comparisons", -2), "metrics.edc_fm.comparisons = -2 is not a non-negative integer"),
        (
            _set("metrics", "edc_fm", "bootstrap", "level", 1.0),
            "metrics.edc_fm.bootstrap.level = 1.0 is not a number in (0, 1)",
        ),
        (_set("metrics", "tpr_at_fpr", "abc"), "metrics.tpr_at_fpr must be an object, not a string ('abc')"),
        (
            _set("method", "options", ["weights", "x.onnx"]),
            "method.options must be an object of strings (option -> value) or null, not a list (['weights', 'x.onnx'])",
        ),
        (_set("method", "name", ""), "method.name = '' is not a non-empty string"),
        (_set("config", "bootstrap", "1000"), "config.bootstrap must be a non-negative integer, not a string ('1000')"),
        (
            _set("protocol", "metrics", ["tpr_at_fpr", "no_such"]),
            "protocol.metrics[1] = 'no_such' is not a declared metric (no fiqa_bench.metrics.no_such)",
        ),
        (_set("timings", "total_s", -1.0), "timings.total_s = -1.0 is not a number >= 0"),
        (
            _set("timings", "bootstrap_reused", "yes"),
            "timings.bootstrap_reused must be true or false, not a string ('yes')",
        ),
        (_set("raw", "sha256", 7), "raw.sha256 must be a string, not an integer (7)"),
        (_set("notes", [math.nan]), "notes[0] must be a string, not a number (nan)"),
        (_set("from_a_newer_writer", {"x": [1, math.nan]}), "from_a_newer_writer.x[1] = nan is not a finite number"),
        (_drop("counts"), "not a valid results file: missing object 'counts'"),
        (_set("metrics", {}), "metrics is empty (expected at least one metric)"),
    ],
)
def test_validator_messages(corrupt, message):
    assert _problems(IJB, corrupt) == [message]


def test_validator_lists_every_problem_and_unknown_fields_pass():
    d = _load(IJB)
    d["counts"]["genuine"] = -1
    d["counts"]["impostor"] = "many"
    d["suite"]["built_on"] = "a newer machine"  # a field no reader reads: allowed
    assert validate(d) == [
        "counts.genuine = -1 is not a non-negative integer",
        "counts.impostor must be a non-negative integer, not a string ('many')",
    ]
    assert validate([1, 2]) == ["not a valid results file: the top level must be an object, not a list ([1, 2])"]


def test_every_committed_results_file_is_valid():
    checked = 0
    for path in sorted(REPORTS.rglob("*.json")):
        obj = _load(path)
        if isinstance(obj, dict) and ("schema_version" in obj or "metrics" in obj):
            assert validate(obj) == [], path
            checked += 1
    assert checked >= 100


def test_fields_words():
    assert field_path("metrics", "tpr_at_fpr") == "metrics.tpr_at_fpr"
    assert field_path("metrics.tpr_at_fpr", "1e-3") == "metrics.tpr_at_fpr['1e-3']"
    assert field_path("notes", 2) == "notes[2]"
    assert [describe(v) for v in (None, True, 3, 0.5, "x" * 70, {})] == [
        "null",
        "a boolean (true)",
        "an integer (3)",
        "a number (0.5)",
        "a string ('" + "x" * 56 + "...)",
        "an object",
    ]
    out: list[str] = []
    Obj({"n": Num(0, integer=True), "t": Text(nonempty=True), "m": Map(Interval(Num(0, 1)))}, required=("n",)).check(
        {"t": 7, "m": {"a": [0.2, 0.1], "b": [0.1, 2]}}, "x", out
    )
    assert out == [
        "x.n is missing (expected a non-negative integer)",
        "x.t must be a non-empty string, not an integer (7)",
        "x.m.a = [0.2, 0.1] is not an interval: low > high",
        "x.m.b[1] = 2 is not a fraction in [0, 1]",
    ]
    out = []
    Num(0, integer=True).check(10**400, "big", out)  # a whole number too large for a float is still a count
    assert out == []


# ------------------------------------------------------------------------------------------ keys, labels, reasons


def test_one_key_one_label_one_null_reason():
    runs = load_runs([REPORTS / "celeba-eval" / "table7-ijb"])
    a = next(r for r in runs if r.record.backbone["name"] == "dlib")
    assert comparable_key(a.record) == (
        "celeba-lfw-eval",
        "1",
        a.record.protocol["pairs_sha256"],
        a.record.protocol["faces_sha256"],
        "dlib",
        a.record.backbone["weights_sha256"],
        "top1",
    )
    same = [r for r in runs if pairing_key(r.record) == pairing_key(a.record)]
    assert len(same) == 2 and {r.record.backbone["name"] for r in same} == {"dlib"}
    labels = sorted(r.label for r in same)
    assert all(label.startswith("tinyfq [weights=") and "/" not in label for label in labels)
    assert method_label(a.record, keys=[]) == "tinyfq"
    lfw = load_runs([LFW_RUN])[0]
    assert null_reason(lfw.record, "edc_fnm", "0.20") == (
        "no quality method in this run (EDC needs a quality score per comparison)"
    )
    ijb = copy.deepcopy(load_runs([IJB])[0])
    ijb.record.metrics["tpr_at_fpr"]["values"]["1e-6"] = None
    assert null_reason(ijb.record, "tpr_at_fpr", "1e-6") == (
        "FPR 1e-6 needs at least 1000000 impostor pairs; this protocol has 132096"
    )
    assert null_reason(ijb.record, "tpr_at_fpr", "1e-7") == "FPR 1e-7 was not computed in this run"
