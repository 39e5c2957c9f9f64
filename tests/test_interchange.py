"""``fiqa-bench import`` / ``export``: real runs on a small IJB-layout benchmark of real faces, exported and imported
again, give the same metrics (1e-12); hand-written score files parse to the arrays written by hand; every bad input
is one line naming the file and line, exit 2."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from _reference import best_rows, cosine, tpr_at_fpr_conservative
from fiqa_bench.cli.main import main
from fiqa_bench.pipeline.runner import RunConfig, run
from fiqa_bench.results.interchange import ImportRequest, export_run, get_format, import_data
from fiqa_bench.results.record import load_record, read_raw

B = 60  # bootstrap resamples: enough to compare intervals, quick on two cores


def _close(a, b, where: str = "metrics") -> list[str]:
    """Where two JSON values differ by more than 1e-12 (numbers) or at all (anything else)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _close(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: lengths {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _close(x, y, f"{where}[{i}]")]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if math.isnan(a) and math.isnan(b):
            return []
        return [] if abs(a - b) <= 1e-12 else [f"{where}: {a!r} != {b!r}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


@pytest.fixture(scope="module")
def runs(small_bench, tmp_path_factory, shared):
    """The blur method with the shared MobileFaceNet on the benchmark: selection all keeping every image's embedding
    (what the insightface export needs), and the paper's top1 and topk; random's quality of every image (selection
    all); each with a bootstrap."""
    import os

    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("FIQA_BENCH_CACHE")
    os.environ["FIQA_BENCH_CACHE"] = str(cache)
    mbf = f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}"
    out = tmp_path_factory.mktemp("runs")
    paths = {}
    try:
        for name, method, sel in (
            ("all", "blur", "all"),
            ("top1", "blur", "top1"),
            ("topk", "blur", "topk"),
            ("random-all", "random", "all"),
        ):
            cfg = RunConfig(
                protocol=str(small_bench),
                backbone=mbf,
                method=method,
                selection=sel,
                bootstrap=B,
                keep_embeddings=name == "all",
                out=str(out / name),
                progress=False,
            )
            paths[name] = run(cfg)[0]
    finally:
        if old is None:
            os.environ.pop("FIQA_BENCH_CACHE")
        else:
            os.environ["FIQA_BENCH_CACHE"] = old
    return paths


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("selection", ["top1", "topk", "all"])
def test_insightface_export_then_import_gives_the_runs_metrics(runs, small_bench, selection, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = export_run(runs["all"], "insightface", "feats.npz")
    assert [p.name for p in written] == ["feats.npz"]
    with np.load("feats.npz") as z:
        feats, quality = z["img_feats"], z["quality"]
    raw_all = read_raw(runs["all"])
    n = raw_all["image_group"].shape[0]
    faces = next((small_bench / "meta").glob("*_face_tid_mid.txt"))
    assert feats.shape[0] == quality.shape[0] == n == len(faces.read_text().splitlines())
    assert np.array_equal(quality, raw_all["image_quality"])

    path, record = import_data(
        ImportRequest(
            input="feats.npz", format="insightface", protocol=str(small_bench), selection=selection,
            method="blur", fr="mbf", bootstrap=B, out="imported",
        )
    )  # fmt: skip
    native = load_record(runs[selection])
    assert not _close(native.metrics, json.loads(json.dumps(record["metrics"])))
    # where the numbers came from: the file as typed, its sha256 computed here, and no claim of a computation
    assert record["config"]["imported"] == {
        "format": "insightface",
        "files": {"embeddings": "feats.npz", "quality": "feats.npz"},
        "sha256": {
            k: hashlib.sha256((tmp_path / "feats.npz").read_bytes()).hexdigest() for k in ("embeddings", "quality")
        },
    }
    assert "computed outside fiqa-bench" in record["backbone"]["card"]["summary"]
    assert record["counts"]["images_embedded_new"] == 0 and record["counts"]["images_scored_new"] == 0

    # the same kept images and pair scores as the run's, which differ between selections
    raw = read_raw(path)
    native_raw = read_raw(runs[selection])
    for key in ("kept_rows", "pair_scores", "pair_quality", "template_quality"):
        assert np.array_equal(raw[key], native_raw[key], equal_nan=True), key
    others = [read_raw(runs[s])["pair_scores"] for s in ("top1", "topk", "all") if s != selection]
    assert not any(np.array_equal(raw["pair_scores"], o) for o in others)
    # an independent loop: each pair's score is the cosine of its templates' kept images (top1: the best-quality one)
    if selection == "top1":
        groups = raw["image_group"]
        kept = best_rows(groups, quality, np.ones(n, bool), 1)
        best = {int(groups[r]): r for r in kept}
        expect = [cosine(feats[best[a]], feats[best[b]]) for a, b in zip(raw["pair_a"], raw["pair_b"])]
        assert np.allclose(raw["pair_scores"], expect, atol=1e-6)
        assert sorted(raw["kept_rows"].tolist()) == sorted(kept)


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["bob5", "bobcsv", "csv"])
def test_score_files_export_then_import_give_the_runs_metrics(runs, fmt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = "scores.csv" if "csv" in fmt else "scores.txt"
    written = export_run(runs["top1"], fmt, out)
    quality = [str(p.name) for p in written[1:]]
    assert quality == ([] if fmt in ("csv", "bob4") else ["scores.quality.csv"])
    path, record = import_data(
        ImportRequest(input=out, format=fmt, quality=quality[0] if quality else None, method="blur", fr="mbf",
                      bootstrap=B, out="imported")
    )  # fmt: skip
    native = load_record(runs["top1"])
    got = json.loads(json.dumps(record["metrics"]))
    raw_native, raw = read_raw(runs["top1"]), read_raw(path)
    assert np.array_equal(raw["pair_labels"], raw_native["pair_labels"])
    assert np.array_equal(raw["pair_scores"], raw_native["pair_scores"].astype(np.float64))
    assert not _close(native.metrics, got)
    assert np.array_equal(raw["pair_quality"], raw_native["pair_quality"])
    assert record["config"]["imported"]["files"]["scores"] == out
    assert record["protocol"]["version"] == f"imported-{fmt}"
    # the same command line reads the same numbers back (rescore agrees with its .npz)
    result = CliRunner().invoke(main, ["rescore", "--no-progress", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.shared
@pytest.mark.slow
def test_bob4_round_trips_and_refuses_what_it_cannot_hold(runs, tmp_path, monkeypatch):
    """bob's 4 columns name the reference by its subject only: a template run's comparisons of two templates of one
    subject with one probe cannot be written (one line, exit 2). The real run's comparisons, one per (subject, probe),
    written here as 4 columns by a loop, import to TPRs equal to a loop's; exported and imported again, the same
    metrics (1e-12)."""
    monkeypatch.chdir(tmp_path)
    line = _fails(tmp_path, ["export", str(runs["top1"]), "--format", "bob4", "-o", "x.txt"])
    assert "would be one line" in line and "bob5" in line
    raw = read_raw(runs["top1"])
    names = raw["subjects"][raw["template_subject"]]
    pos = {int(t): i for i, t in enumerate(raw["template_ids"])}
    lines, kept, seen = [], [], set()
    for i, (a, b) in enumerate(zip(raw["pair_a"], raw["pair_b"])):
        key = (names[pos[int(a)]], int(b))
        if key not in seen:
            seen.add(key)
            kept.append(i)
            lines.append(f"{key[0]} {names[pos[int(b)]]} t{int(b)} {float(raw['pair_scores'][i])!r}\n")
    (tmp_path / "first.txt").write_text("".join(lines))
    first, rec1 = import_data(ImportRequest(input="first.txt", format="bob4", bootstrap=B, out="one"))
    scores, labels = raw["pair_scores"][kept].astype(np.float64), raw["pair_labels"][kept]
    tpr = rec1["metrics"]["tpr_at_fpr"]["values"]
    assert tpr == {k: tpr_at_fpr_conservative(scores, labels, float(k)) for k in tpr}
    assert all("unavailable" in rec1["metrics"][k] for k in rec1["metrics"] if k != "tpr_at_fpr")  # no quality
    export_run(first, "bob4", "again.txt")
    _, rec2 = import_data(ImportRequest(input="again.txt", format="bob4", benchmark="first", bootstrap=B, out="two"))
    assert not _close(json.loads(json.dumps(rec1["metrics"])), json.loads(json.dumps(rec2["metrics"])))


@pytest.mark.shared
@pytest.mark.slow
def test_kept_embeddings_are_the_backbones_and_line_order_does_not_matter(runs, small_bench, shared, tmp_path):
    """``run --keep-embeddings`` keeps each image's embedding as the backbone gives it (one image at a time, here);
    comparisons imported with their lines shuffled give the same metrics, intervals included (the bootstrap numbers
    subjects by their ids, not by the file's order)."""
    from _reference import embed_rows
    from fiqa_bench import registry
    from fiqa_bench.protocols.ijb import IJBLayout

    raw = read_raw(runs["all"])
    bench = IJBLayout(str(small_bench)).load()
    backbone = registry.create("backbone", f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}")
    rows = raw["kept_rows"][[0, 7, 30]]
    direct = embed_rows(bench, backbone, rows)
    for i, r in zip([0, 7, 30], rows):
        assert np.allclose(raw["kept_embeddings"][i], direct[int(r)], atol=1e-5)
    assert "kept_embeddings" not in read_raw(runs["top1"])  # only where asked for

    export_run(runs["top1"], "csv", tmp_path / "s.csv")
    head, *lines = (tmp_path / "s.csv").read_text().splitlines(keepends=True)
    order = np.random.default_rng(0).permutation(len(lines))
    (tmp_path / "shuffled.csv").write_text(head + "".join(lines[i] for i in order))
    _, one = import_data(
        ImportRequest(input=str(tmp_path / "s.csv"), format="csv", bootstrap=B, out=str(tmp_path / "a"))
    )
    _, two = import_data(
        ImportRequest(input=str(tmp_path / "shuffled.csv"), format="csv", bootstrap=B, out=str(tmp_path / "b"))
    )
    assert not _close(json.loads(json.dumps(one["metrics"])), json.loads(json.dumps(two["metrics"])))


@pytest.mark.shared
@pytest.mark.slow
def test_imports_work_with_compare_report_and_leaderboard(runs, small_bench, tmp_path, monkeypatch):
    """The same embeddings imported with two methods' quality (blur's and random's, as .npy files) are paired by
    compare like two runs, and report and leaderboard take the imported folder as it is."""
    monkeypatch.chdir(tmp_path)
    export_run(runs["all"], "insightface", "feats.npz")
    with np.load("feats.npz") as z:
        np.save("feats.npy", z["img_feats"])
        np.save("blur.npy", z["quality"])
    np.save("random.npy", read_raw(runs["random-all"])["image_quality"])
    cli = CliRunner()
    for method in ("blur", "random"):
        args = ["import", "feats.npy", "--format", "insightface", "--quality", f"{method}.npy", "-p", str(small_bench)]
        result = cli.invoke(main, [*args, "-m", method, "--fr", "mbf", "--bootstrap", str(B), "-o", "imported"])
        assert result.exit_code == 0, result.output
    records = [load_record(p) for p in sorted((tmp_path / "imported").glob("*.json"))]
    assert sorted(r.method["name"] for r in records) == ["blur", "random"]
    assert records[0].settings["imported"] == records[1].settings["imported"]  # the same embeddings
    result = cli.invoke(main, ["compare", "--json", "imported"])
    assert result.exit_code == 0, result.output
    groups = json.loads(result.output)
    assert len(groups) == 1 and "blur" in result.output and "random" in result.output
    for args in (["report", "imported"], ["leaderboard", "imported", "-o", "site"]):
        result = cli.invoke(main, args)
        assert result.exit_code == 0, result.output
    assert "random" in (tmp_path / "imported" / "report.md").read_text()
    assert (tmp_path / "site" / "index.html").is_file()


@pytest.mark.shared
@pytest.mark.slow
def test_kfold_comparisons_round_trip_as_csv(small_ytf, mbf, tmp_path, isolated_cache, monkeypatch):
    """A YTF-layout run (10 identity-disjoint folds) exported as CSV keeps its folds; imported like ytf-layout it
    gives the run's 10-fold accuracy and EDC values, intervals included (1e-12)."""
    monkeypatch.chdir(tmp_path)
    cfg = RunConfig(protocol=str(small_ytf), backbone=mbf, method="blur", bootstrap=B, out="run", progress=False)
    path, native = run(cfg)
    export_run(path, "csv", "pairs.csv")
    assert open("pairs.csv").readline().strip().endswith(",fold")
    _, record = import_data(ImportRequest(input="pairs.csv", format="csv", like="ytf-layout", bootstrap=B, out="imp"))
    assert "accuracy" in record["metrics"] and "unavailable" not in record["metrics"]["accuracy"]
    assert not _close(json.loads(json.dumps(native["metrics"])), json.loads(json.dumps(record["metrics"])))


BOB4 = """# claimed_id real_id test_label score
alice alice a2 0.91
alice bob b1 0.12

bob bob b2 0.77
bob alice a2 -0.05
"""
BOB5 = """alice a1 alice a2 0.91
alice a1 bob b1 0.12
bob b1 bob b2 0.77
bob b1 alice a2 -0.05
"""
QUALITY = "sample,quality\na1,0.5\na2,0.25\nb1,0.75\nb2,1.5\n"
CSV = """ref_id,probe_id,ref_subject,probe_subject,label,score,ref_quality,probe_quality
a1,a2,alice,alice,1,0.91,0.5,0.25
a1,b1,alice,bob,0,0.12,0.5,0.75
b1,b2,bob,bob,1,0.77,0.75,1.5
b1,a2,bob,alice,0,-0.05,0.75,0.25
"""


def test_hand_written_score_files_parse_to_their_arrays(tmp_path):
    (tmp_path / "s4.txt").write_text(BOB4)
    (tmp_path / "s5.txt").write_text(BOB5)
    (tmp_path / "q.csv").write_text(QUALITY)
    (tmp_path / "s.csv").write_text(CSV)
    four = get_format("bob4").read(tmp_path / "s4.txt")
    assert four.probe.tolist() == ["a2", "b1", "b2", "a2"]
    assert four.ref_subject.tolist() == ["alice", "alice", "bob", "bob"]
    assert four.probe_subject.tolist() == ["alice", "bob", "bob", "alice"]
    assert four.scores.tolist() == [0.91, 0.12, 0.77, -0.05]
    assert four.labels.tolist() == [1, 0, 1, 0]
    assert four.lines.tolist() == [2, 3, 5, 6]  # the comment and the empty line skipped, lines counted
    five = get_format("bob5").read(tmp_path / "s5.txt", tmp_path / "q.csv")
    assert five.ref.tolist() == ["a1", "a1", "b1", "b1"] and five.probe.tolist() == ["a2", "b1", "b2", "a2"]
    assert five.labels.tolist() == [1, 0, 1, 0]
    assert five.ref_quality.tolist() == [0.5, 0.5, 0.75, 0.75]
    assert five.probe_quality.tolist() == [0.25, 0.75, 1.5, 0.25]
    # the same lines with a comment are read line by line (the whole-file fast path needs every line a comparison)
    (tmp_path / "c5.txt").write_text("# scores\n" + BOB5)
    slow = get_format("bob5").read(tmp_path / "c5.txt", tmp_path / "q.csv")
    for name in ("ref", "probe", "ref_subject", "probe_subject", "scores", "labels", "ref_quality", "probe_quality"):
        assert getattr(slow, name).tolist() == getattr(five, name).tolist(), name
    assert slow.lines.tolist() == [2, 3, 4, 5] and five.lines.tolist() == [1, 2, 3, 4]
    plain = get_format("csv").read(tmp_path / "s.csv")
    for name in ("ref", "probe", "ref_subject", "probe_subject", "scores", "labels", "ref_quality", "probe_quality"):
        assert getattr(plain, name).tolist() == getattr(five, name).tolist(), name


def test_imported_scores_are_measured_like_a_run(tmp_path, monkeypatch):
    """A hand-written CSV imported: TPR@FPR equals a loop over its lines, the pair quality is the min of the sides,
    the subjects are numbered in sorted order for the bootstrap."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.csv").write_text(CSV)
    result = CliRunner().invoke(main, ["import", "s.csv", "--format", "csv", "--bootstrap", "20", "-o", "res"])
    assert result.exit_code == 0, result.output
    path = next((tmp_path / "res").glob("*.json"))
    record, raw = load_record(path), read_raw(path)
    scores, labels = [0.91, 0.12, 0.77, -0.05], [1, 0, 1, 0]
    tpr = record.metrics["tpr_at_fpr"]["values"]
    assert tpr == {k: tpr_at_fpr_conservative(np.array(scores), np.array(labels), float(k)) for k in tpr}
    assert raw["pair_quality"].tolist() == [min(0.5, 0.25), min(0.5, 0.75), min(0.75, 1.5), min(0.75, 0.25)]
    assert raw["subjects"].tolist() == ["alice", "bob"]
    assert raw["template_labels"][raw["pair_a"]].tolist() == ["a1", "a1", "b1", "b1"]
    assert record.protocol["name"] == "s" and record.method["name"] == "imported"
    assert record.config["imported"]["sha256"]["scores"] == hashlib.sha256(CSV.encode()).hexdigest()


def _fails(tmp_path, args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


HEADER = "ref_id,probe_id,ref_subject,probe_subject,label,score\n"
BOB_HEADER = "bio_ref_reference_id,bio_ref_subject_id,probe_reference_id,probe_subject_id,score\n"
BAD_SCORES = [
    ("bob4", "a a x 0.5\nb a y 0.1 7\n", None, "s:2: expected 4 fields"),
    ("bob5", "a a1 a a2 0.5\nb b1 a a2 nan\n", None, "s:2: score is nan"),
    ("bob5", "a a1 a a2 0.5\nb b1 a a2 x\n", None, "s:2: score 'x' is not a number"),
    ("bob5", "a a1 a a2 0.5\nb b1 a a2 0.1\na a2 a a1 0.5\n", None, "s:3: a2 and a1 are already compared on line 1"),
    ("bob5", "a a1 a a2 0.5\nb b1 a a2 0.1\n", "sample,quality\na1,1\na2,2\n", "s:2: sample b1 has no quality"),
    ("bob5", "a a1 a a2 0.5\n", "sample,quality\na1,1\na2,2\na1,3\n", "q.csv:4: sample a1 already has a quality"),
    ("bob5", "a a1 a a2 0.5\n", "sample,quality\na1,1\na2,nan\n", "q.csv:3: quality is nan"),
    ("csv", HEADER + "a,b,x,y,2,0.5\n", None, "s:2: label must be 0 or 1"),
    ("csv", "ref_id,probe_id,ref_subject,label,score\na,b,x,1,0.5\n", None, "s:1: the header lacks the column(s)"),
    ("csv", HEADER + "a,b,x,y,0,0.5\nc,d,x\n", None, "s:3: expected 6 fields"),
    ("bobcsv", BOB_HEADER + "a,x,b,x,inf\n", None, "s:2: score is inf"),
    ("bob5", "a a1 a a2 0.5\na a2 b b1 0.5\nb b1 a a2 0.5\n", None, "s:3: b1 and a2 are already compared on line 2"),
    ("bob5", "a a1 a a2 0.5\nc a2 b b1 0.5\n", None, "s:2: sample a2 has subject 'c' here but 'a' on line 1"),
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "text", "quality", "message"), BAD_SCORES)
def test_bad_score_files_name_the_file_and_line(tmp_path, monkeypatch, fmt, text, quality, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s").write_text(text)
    args = ["import", "s", "--format", fmt, "--bootstrap", "0", "-o", "res"]
    if quality is not None:
        (tmp_path / "q.csv").write_text(quality)
        args += ["--quality", "q.csv"]
    line = _fails(tmp_path, args)
    assert line.startswith("error: ") and message in line, line
    assert not (tmp_path / "res").exists() or not list((tmp_path / "res").glob("*.json"))


def test_unknown_format_is_a_usage_error(tmp_path):
    (tmp_path / "s").write_text(BOB5)
    line = _fails(tmp_path, ["import", str(tmp_path / "s"), "--format", "bob6"])
    assert "bob6" in line and "bob5" in line


@pytest.mark.shared
@pytest.mark.slow
def test_bad_image_arrays_name_the_file_and_row(runs, small_bench, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    export_run(runs["all"], "insightface", "good.npz")
    with np.load("good.npz") as z:
        feats, quality = z["img_feats"], z["quality"]
    n = feats.shape[0]
    faces = next((small_bench / "meta").glob("*_face_tid_mid.txt")).name
    nan = feats.copy()
    nan[5, 3] = np.nan
    short = f"short.npz: embeddings has {n - 1} rows but {faces} lists {n}"
    cases = {
        "short.npz": ({"img_feats": feats[:-1], "quality": quality}, short),
        "nan.npz": ({"img_feats": nan, "quality": quality}, f"nan.npz:6: embeddings row 5 (line 6 of {faces}) is not"),
        "flat.npz": ({"img_feats": feats[:, 0], "quality": quality}, "flat.npz: embeddings must be a (N, D) array"),
        "qdim.npz": ({"img_feats": feats, "quality": quality[:, None]}, "qdim.npz: quality must be a (N,) array"),
        "none.npz": ({"feats": feats}, "none.npz: has no array img_feats or embeddings"),
    }  # fmt: skip
    for name, (arrays, message) in cases.items():
        np.savez(name, **arrays)
        line = _fails(tmp_path, ["import", name, "--format", "insightface", "-p", str(small_bench), "-o", "res"])
        assert message in line, line
    # a run that keeps no per-image embeddings says what is missing
    line = _fails(tmp_path, ["export", str(runs["top1"]), "--format", "insightface", "-o", "x.npz"])
    assert "holds no per-image embeddings" in line and "--keep-embeddings" in line
