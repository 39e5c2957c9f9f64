"""The leaderboard site from real runs on real faces (and hand-edited copies for the edge cases), read back as
files: boards, values and intervals as the results files hold them, copies and links, costs, cards, refusals.

What the page's script does with these (sorting, filtering, the URL) is checked in a real browser in
tests/test_browser.py."""

from __future__ import annotations

import copy
import hashlib
import html
import json
import re
import shutil
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from _leaderboard_runs import METHODS, real_runs
from fiqa_bench.cli.main import main
from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.writers.leaderboard import MARKER, embed_json, write_site

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def runs(small_bench, shared, tmp_path_factory) -> Path:
    return real_runs(
        small_bench, f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}", tmp_path_factory.mktemp("lb-runs")
    )


def site_data(site: Path) -> dict:
    page = (site / "index.html").read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="leaderboard-data">(.*?)</script>', page, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1))


def records(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.rglob("*.json")) if p.name != "costs.json"}


def copy_run(src: Path, dest_dir: Path, edit) -> Path:
    """A hand-edited copy of a results file (and its .npz) in ``dest_dir``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    rec = json.loads(src.read_text())
    edit(rec)
    out = dest_dir / src.name
    out.write_text(json.dumps(rec))
    shutil.copy(src.with_suffix(".npz"), out.with_suffix(".npz"))
    return out


def one(folder: Path, method: str) -> Path:
    return next(
        p
        for p, r in ((p, json.loads(p.read_text())) for p in sorted(folder.glob("*.json")))
        if r["method"]["name"] == method
    )


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("href", "src") and v is not None:
                self.urls.append(v)


def test_boards_values_and_intervals_are_the_results_files(runs, tmp_path):
    site = tmp_path / "site"
    write_site([runs], site)
    data = site_data(site)
    recs = records(runs)
    # one board per selection here: 'top1' (the four methods) and 'all' (no quality method)
    assert [(b["protocol"], b["selection"], sorted(r["method"] for r in b["rows"])) for b in data["boards"]] == [
        ("mini", "all", ["none"]),
        ("mini", "top1", sorted(m for m in METHODS if m)),
    ]
    n_cells = n_intervals = 0
    for board in data["boards"]:
        for row in board["rows"]:
            rec = recs[Path(row["file"]).name]
            assert row["method"] == rec["method"]["name"]
            tpr = rec["metrics"]["tpr_at_fpr"]
            for fpr, value in tpr["values"].items():
                cell = row["cells"][f"tpr_at_fpr:{fpr}"]
                assert cell["v"] == value
                if value is None:
                    assert cell["reason"] == tpr["detail"][fpr]["reason"] and cell["text"] == "—"
                else:
                    assert cell["text"] == f"{100 * value:.2f}"
                n_cells += 1
                iv = (tpr.get("intervals") or {}).get(fpr)
                if iv is not None:
                    assert [cell["lo"], cell["hi"]] == iv
                    assert cell["lo_text"] == f"{100 * iv[0]:.2f}" and cell["hi_text"] == f"{100 * iv[1]:.2f}"
                    n_intervals += 1
                else:
                    assert "lo" not in cell
            for key in ("edc_fnm", "edc_fm", "edc_fnm_rethreshold"):
                value = rec["metrics"][key]
                if "unavailable" in value:
                    assert row["cells"][f"{key}:"]["reason"] == value["unavailable"]
                    assert not any(c.startswith(key + ":0") for c in row["cells"])
                    continue
                for limit, pauc in value["pauc"].items():
                    cell = row["cells"][f"{key}:{limit}"]
                    digits = {"edc_fnm": 4, "edc_fm": 6, "edc_fnm_rethreshold": 4}[key]  # as the metrics declare
                    assert cell["v"] == pauc and cell["text"] == f"{pauc:.{digits}f}"
                    if value.get("intervals", {}).get(limit) is not None:
                        assert [cell["lo"], cell["hi"]] == value["intervals"][limit]
                        n_intervals += 1
                    n_cells += 1
    assert n_cells == 4 * (5 + 6) + 5  # four methods x (5 TPR + 3 x 2 pAUC) + the baseline's 5 TPR
    if any("intervals" in v for r in recs.values() for v in r["metrics"].values()):
        assert n_intervals > 0
    top1 = data["boards"][1]
    assert top1["counts"] == {
        k: recs[Path(top1["rows"][0]["file"]).name]["counts"][k] for k in ("genuine", "impostor", "subjects")
    }
    # columns carry the metric's direction: TPR higher is better, pAUC lower
    direction = {c["id"]: c["higher_is_better"] for c in top1["columns"]}
    assert direction["tpr_at_fpr:1e-1"] is True and direction["edc_fnm:0.20"] is False
    assert data["filters"]["method"] == sorted(["none", *[m for m in METHODS if m]])


def test_rows_link_to_byte_identical_copies_cards_and_nothing_outside(runs, tmp_path):
    site = tmp_path / "site"
    write_site([runs], site)
    data = site_data(site)
    from fiqa_bench import registry

    for board in data["boards"]:
        for row in board["rows"]:
            src = runs / Path(row["file"]).name
            assert (site / row["file"]).read_bytes() == src.read_bytes()
            rec = json.loads(src.read_text())
            raw = (site / row["raw"]).read_bytes()
            assert hashlib.sha256(raw).hexdigest() == rec["raw"]["sha256"]
            card = (site / row["card"]).read_text()
            if rec["backbone"].get("card"):  # the page names the run's FR backbone and shows its card too
                assert f"FR backbone of this run: {rec['backbone']['name']}" in html.unescape(card)
                assert rec["backbone"]["card"]["licence"] in html.unescape(card)
            if row["method"] == "none":
                assert "no quality method" in card
                continue
            real = registry.load_class("method", row["method"]).card  # the card itself, not the results copy
            for text in (real.paper, real.licence, real.summary):
                assert text and text in html.unescape(card)
    # every href/src of every page is relative and names a file of the site: works from disk and any host
    pages = [site / "index.html", *sorted((site / "cards").glob("*.html"))]
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text())
        for url in parser.urls:
            if url.startswith("data:") or url.startswith("#"):
                continue
            assert not re.match(r"^[a-z]+:", url) and not url.startswith("/"), (page, url)
            assert (page.parent / url).resolve().exists() or url.endswith("/"), (page, url)
    for name in ("index.html", "leaderboard.js", "leaderboard.css"):
        text = (site / name).read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
        assert str(runs) not in text and str(tmp_path) not in text  # no machine paths leak into the page


def test_other_protocol_version_or_pair_list_is_never_ranked_together(runs, tmp_path):
    blur = one(runs, "blur")
    v2 = copy_run(blur, tmp_path / "v2", lambda r: r["protocol"].update(version="2"))
    pairs = copy_run(blur, tmp_path / "pairs", lambda r: r["protocol"].update(pairs_sha256="0" * 64))
    weights = copy_run(blur, tmp_path / "weights", lambda r: r["backbone"].update(weights_sha256="e" * 64))
    site = tmp_path / "site"
    write_site([runs, tmp_path / "v2", tmp_path / "pairs", tmp_path / "weights"], site)
    data = site_data(site)
    top1 = [b for b in data["boards"] if b["selection"] == "top1"]
    assert len(top1) == 4  # the real runs, version 2, the other pair list, the other backbone weights
    by_variant = {(b["protocol_version"], b["pairs_sha256"], b["backbone_sha256"]): b for b in top1}
    real_rec = json.loads(blur.read_text())
    real = by_variant[("1", real_rec["protocol"]["pairs_sha256"], real_rec["backbone"]["weights_sha256"])]
    assert sorted(r["method"] for r in real["rows"]) == sorted(m for m in METHODS if m)
    for key, path in (
        (("2", real_rec["protocol"]["pairs_sha256"], real_rec["backbone"]["weights_sha256"]), v2),
        (("1", "0" * 64, real_rec["backbone"]["weights_sha256"]), pairs),
        (("1", real_rec["protocol"]["pairs_sha256"], "e" * 64), weights),
    ):
        board = by_variant[key]
        assert [r["method"] for r in board["rows"]] == ["blur"]
        # same file name as the real blur run, other content: its own folder under results/, still byte-identical
        assert (site / board["rows"][0]["file"]).read_bytes() == path.read_bytes()
        assert board["rows"][0]["file"] != real["rows"][0]["file"]
    # boards of one protocol name in several variants say so, and their titles differ
    assert all(b["not_ranked_with"] for b in top1)
    assert len({b["title"] for b in top1 if b["backbone_sha256"] == real_rec["backbone"]["weights_sha256"]}) == 3
    assert (
        "(version 2, pairs"
        in by_variant[("2", real_rec["protocol"]["pairs_sha256"], real_rec["backbone"]["weights_sha256"])]["title"]
    )


def _costs(ms: dict) -> dict:
    return {
        "costs_schema_version": 1,
        "machine": {
            "cpu_model": "test CPU",
            "cores": 2,
            "onnxruntime": "1.0",
            "threads": 2,
            "load_average_start": [0.0, 0.0, 0.0],
            "date": "2026-12-01T00:00:00+00:00",
        },
        "config": {"images": 8, "repeats": 3, "batch_size": 4},
        "methods": [
            {
                "name": n,
                "need_aligning": "yes",
                "ms_single": s,
                "ms_batch": b,
                "skipped": None if s else "not measured here",
            }
            for n, (s, b) in ms.items()
        ],
    }


def test_costs_from_costs_json_for_default_builds_only(runs, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(runs, results)
    (results / "costs.json").write_text(json.dumps(_costs({"blur": (0.25, 0.125), "jpeg": (None, None)})))
    variant = copy_run(
        one(runs, "blur"),
        results / "variant",
        lambda r: (
            r["method"].update(options={"threshold": "3"}),
            r["settings"].update(method_options={"threshold": "3"}),
        ),
    )
    site = tmp_path / "site"
    write_site([results], site)
    data = site_data(site)
    rows = {r["label"]: r for b in data["boards"] for r in b["rows"]}
    assert rows["blur"]["cost"]["ms_single"] == 0.25 and rows["blur"]["cost"]["ms_batch"] == 0.125
    assert rows["blur"]["cost"]["text"] == "0.25"
    assert json.loads((site / rows["blur"]["cost"]["file"]).read_text()) == json.loads(
        (results / "costs.json").read_text()
    )
    assert rows["jpeg"]["cost"]["ms_single"] is None and rows["jpeg"]["cost"]["skipped"] == "not measured here"
    assert rows["pose"]["cost"] is None and rows["random"]["cost"] is None  # not in costs.json
    assert rows["blur [threshold=3]"]["cost"] is None  # a variant is not the build that was timed
    assert Path(rows["blur [threshold=3]"]["file"]).name == variant.name
    # a costs.json in another RESULTS_DIR applies when the run's own folder has none
    (results / "costs.json").unlink()
    other = tmp_path / "costs-only"
    other.mkdir()
    (other / "costs.json").write_text(json.dumps(_costs({"pose": (1.5, 1.0)})))
    write_site([results, other], site)
    rows = {r["label"]: r for b in site_data(site)["boards"] for r in b["rows"]}
    assert rows["pose"]["cost"]["ms_single"] == 1.5 and rows["blur"]["cost"] is None


def test_intervals_from_a_results_file_and_none_without(runs, tmp_path):
    def with_intervals(r):
        r["metrics"]["tpr_at_fpr"]["values"]["1e-1"] = 0.75
        r["metrics"]["tpr_at_fpr"]["intervals"] = {"1e-1": [0.5, 0.875], "1e-2": None}
        r["metrics"]["tpr_at_fpr"]["bootstrap"] = {
            "B": 200,
            "level": 0.9,
            "method": "percentile",
            "unit": "subject",
            "seed": 7,
        }

    def without(r):
        for v in r["metrics"].values():
            v.pop("intervals", None)
            v.pop("bootstrap", None)

    copy_run(one(runs, "blur"), tmp_path / "a", with_intervals)
    copy_run(one(runs, "jpeg"), tmp_path / "a", without)
    write_site([tmp_path / "a"], tmp_path / "site")
    board = site_data(tmp_path / "site")["boards"][0]
    rows = {r["method"]: r for r in board["rows"]}
    cell = rows["blur"]["cells"]["tpr_at_fpr:1e-1"]
    assert (cell["v"], cell["text"], cell["lo"], cell["hi"], cell["lo_text"], cell["hi_text"]) == (
        0.75,
        "75.00",
        0.5,
        0.875,
        "50.00",
        "87.50",
    )
    assert cell["bootstrap"]["B"] == 200 and board["bootstrap"]["seed"] == 7
    assert all("lo" not in c for c in rows["jpeg"]["cells"].values())
    assert (
        rows["jpeg"]["cells"]["tpr_at_fpr:1e-1"]["v"]
        == json.loads(one(runs, "jpeg").read_text())["metrics"]["tpr_at_fpr"]["values"]["1e-1"]
    )


def test_markup_in_a_results_file_cannot_escape_the_data_element(runs, tmp_path):
    evil = "</script><script>alert(1)</script><!--"
    copy_run(one(runs, "blur"), tmp_path / "a", lambda r: r["method"].update(name=evil))
    write_site([tmp_path / "a"], tmp_path / "site")
    page = (tmp_path / "site" / "index.html").read_text()
    assert page.count("</script>") == 2 and "<!--" not in page  # the data element's and the script tag's
    assert site_data(tmp_path / "site")["boards"][0]["rows"][0]["method"] == evil
    assert json.loads(embed_json({"x": "a<b>&c"})) == {"x": "a<b>&c"}
    card = next((tmp_path / "site" / "cards").glob("*.html")).read_text()
    assert evil not in card and evil in html.unescape(card)


def test_rebuild_is_deterministic_and_in_place_but_a_foreign_folder_is_refused(runs, tmp_path):
    site = tmp_path / "site"
    write_site([runs], site)
    first = {p.relative_to(site): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}
    (site / "results" / "stale.json").write_text("{}")
    write_site([runs], site)
    second = {p.relative_to(site): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}
    assert first == second  # same bytes, and the stale copy is gone
    assert (site / MARKER).is_file()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(FiqaBenchError, match="not empty"):
        write_site([runs], foreign)
    assert (foreign / "keep.txt").read_text() == "mine" and not (foreign / "index.html").exists()


def test_bad_results_file_is_named_and_non_results_json_skipped(runs, tmp_path):
    folder = tmp_path / "r"
    shutil.copytree(runs, folder)
    (folder / "notes.json").write_text(json.dumps({"hello": 1}))
    with pytest.warns(UserWarning, match="notes.json: not a fiqa-bench results file"):
        write_site([folder], tmp_path / "site")
    bad = folder / "broken.json"
    rec = json.loads(one(runs, "blur").read_text())
    del rec["protocol"]
    bad.write_text(json.dumps(rec))
    with pytest.raises(FiqaBenchError, match=r"broken\.json: not a valid results file: missing object 'protocol'"):
        write_site([folder], tmp_path / "site2")
    (folder / "costs.json").write_text(json.dumps({"costs_schema_version": 1}))
    bad.unlink()
    with pytest.raises(FiqaBenchError, match=r"costs\.json: malformed costs file"):
        write_site([folder], tmp_path / "site3")


def test_cli_builds_the_site_and_errors_are_one_line(runs, tmp_path):
    res = CliRunner().invoke(main, ["leaderboard", str(runs), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"leaderboard: {tmp_path / 'site' / 'index.html'} (")
    assert len(site_data(tmp_path / "site")["boards"]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(main, ["leaderboard", str(empty), "--out", str(tmp_path / "site2")])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [f"error: no results files under {empty}"]
    res = CliRunner().invoke(main, ["leaderboard", str(runs)])
    assert res.exit_code == 2 and "--out" in res.output and len(res.output.strip().splitlines()) == 1


def test_data_is_only_what_the_declared_metrics_give(runs, tmp_path):
    """A metric key the protocol does not declare is not shown, even when the metrics object holds it."""
    copy_run(one(runs, "blur"), tmp_path / "a", lambda r: r["metrics"].update(made_up={"values": {"x": 0.5}}))
    write_site([tmp_path / "a"], tmp_path / "site")
    board = site_data(tmp_path / "site")["boards"][0]
    assert {c["metric"] for c in board["columns"]} == {"tpr_at_fpr", "edc_fnm", "edc_fm", "edc_fnm_rethreshold"}
    assert copy.deepcopy(board["rows"][0]["cells"]).keys() == {c["id"] for c in board["columns"]}


def test_a_copy_of_a_run_is_listed_once_and_raw_names_stay_beside_their_file(runs, tmp_path):
    copy_run(one(runs, "blur"), tmp_path / "copy", lambda r: None)
    (tmp_path / "copy" / one(runs, "blur").name).write_bytes(one(runs, "blur").read_bytes())  # the very bytes
    with pytest.warns(UserWarning, match="same bytes as"):
        write_site([runs, tmp_path / "copy"], tmp_path / "site")
    top1 = [b for b in site_data(tmp_path / "site")["boards"] if b["selection"] == "top1"]
    assert len(top1) == 1 and sorted(r["method"] for r in top1[0]["rows"]) == sorted(m for m in METHODS if m)
    # a results file whose raw.file climbs out of its folder: the link is to the .npz beside it, or none
    escape = copy_run(one(runs, "jpeg"), tmp_path / "esc", lambda r: r["raw"].update(file="../../secret.npz"))
    (tmp_path / "secret.npz").write_bytes(b"not for the site")
    write_site([tmp_path / "esc"], tmp_path / "site2")
    row = site_data(tmp_path / "site2")["boards"][0]["rows"][0]
    assert (tmp_path / "site2" / row["raw"]).read_bytes() == escape.with_suffix(".npz").read_bytes()
    escape.with_suffix(".npz").unlink()
    write_site([tmp_path / "esc"], tmp_path / "site2")
    assert site_data(tmp_path / "site2")["boards"][0]["rows"][0]["raw"] is None
    assert not any(p.read_bytes() == b"not for the site" for p in (tmp_path / "site2").rglob("*") if p.is_file())


def test_an_undeclared_metric_key_is_an_error_naming_the_file(runs, tmp_path):
    path = copy_run(one(runs, "blur"), tmp_path / "a", lambda r: r["protocol"]["metrics"].append("no_such_metric"))
    with pytest.raises(FiqaBenchError, match=re.escape(str(path.resolve())) + ".*no_such_metric"):
        write_site([tmp_path / "a"], tmp_path / "site")


def test_paired_verdicts_are_fiqa_bench_compares(runs, tmp_path):
    from fiqa_bench.results.compare import compare, load_runs

    write_site([runs], tmp_path / "site")
    data = site_data(tmp_path / "site")
    top1 = next(b for b in data["boards"] if b["selection"] == "top1")
    assert top1["paired"] is True and top1["paired_note"] is None
    (group,) = [g for g in compare(load_runs([runs])) if g.selection == "top1"]
    rows = {Path(r["file"]).name: r for r in top1["rows"]}
    checked = 0
    for col in group.columns:
        for run in group.runs:
            cell = rows[run.path.name]["cells"][f"{col.metric}:{col.short}"]
            if cell["v"] is None:
                assert "paired" not in cell
                continue
            mark = cell["paired"]
            assert mark["best"] == (run.label == col.best) and mark["tied"] == (run.label in col.tied_with_best)
            assert mark["separated"] == col.best_separated
            d = col.vs_best.get(run.label)
            if d is not None and d.interval is not None:
                assert (mark["diff"], [mark["lo"], mark["hi"]], mark["significant"]) == (
                    d.value,
                    d.interval,
                    d.significant,
                )
            checked += 1
    assert checked == 4 * (1 + 6)  # four methods x (TPR@FPR=1e-1 measured + three pAUCs x 2)
    baseline = next(b for b in data["boards"] if b["selection"] == "all")
    assert baseline["paired"] is False and baseline["paired_note"] is None  # one run: nothing to compare
    # without the .npz (a results folder copied without raw data) the board says why it has no verdicts
    folder = tmp_path / "json-only"
    folder.mkdir()
    for p in runs.glob("*.json"):
        shutil.copy(p, folder / p.name)
    write_site([folder], tmp_path / "site2")
    top1 = next(b for b in site_data(tmp_path / "site2")["boards"] if b["selection"] == "top1")
    assert top1["paired"] is False and top1["paired_note"] == "paired comparisons need every run's .npz"
    assert all("paired" not in c for r in top1["rows"] for c in r["cells"].values())


def test_a_site_inside_its_results_folder_and_a_fifo_are_not_read(runs, tmp_path):
    import os

    folder = tmp_path / "results"
    shutil.copytree(runs, folder)
    os.mkfifo(folder / "pipe.json")  # reading it would block for ever
    for _ in range(2):  # the second build must not read the first build's copies (not even to drop them)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            write_site([folder], folder / "site")
        assert [str(w.message) for w in caught] == [f"{(folder / 'pipe.json').resolve()}: not a regular file; skipped"]
    rows = [r for b in site_data(folder / "site")["boards"] for r in b["rows"]]
    assert sorted(Path(r["file"]).name for r in rows) == sorted(p.name for p in runs.glob("*.json"))


def test_the_same_experiment_in_two_folders_is_one_row(runs, tmp_path):
    """The default tinyfq run kept beside the Table 3 runs and again beside the Table 7 variants: one row."""
    again = copy_run(one(runs, "pose"), tmp_path / "table7", lambda r: r["timings"].update(total_s=123.0))
    with pytest.warns(UserWarning, match=re.escape(str(again.resolve())) + ": same protocol, backbone and settings"):
        write_site([runs, tmp_path / "table7"], tmp_path / "site")
    top1 = next(b for b in site_data(tmp_path / "site")["boards"] if b["selection"] == "top1")
    assert sorted(r["method"] for r in top1["rows"]) == sorted(m for m in METHODS if m)
    assert (tmp_path / "site" / "results" / again.name).read_bytes() == one(runs, "pose").read_bytes()  # the first


def test_the_same_settings_with_other_weights_are_two_rows(runs, tmp_path):
    """A bundled model replaced (tinyfq before and after issue 15): same settings, another method identity, so two
    experiments, both listed, labels telling them apart by the model."""
    src = one(runs, "pose")
    other = copy_run(
        src,
        tmp_path / "new-weights",
        lambda r: r["method"].update(identity=r["method"]["identity"] + "-sha256-0123456789abcdef"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "listed once"
        write_site([runs, tmp_path / "new-weights"], tmp_path / "site")
    top1 = next(b for b in site_data(tmp_path / "site")["boards"] if b["selection"] == "top1")
    pose = [r for r in top1["rows"] if r["method"] == "pose"]
    assert len(pose) == 2
    ident = {json.loads(src.read_text())["method"]["identity"], json.loads(other.read_text())["method"]["identity"]}
    digests = {hashlib.sha256(i.encode()).hexdigest()[:8] for i in ident}
    assert len({r["settings_digest"] for r in pose}) == 1
    assert sorted(r["label"] for r in pose) == sorted(
        f"pose {{settings {pose[0]['settings_digest']}, model {d}}}" for d in digests
    )


def test_a_costs_file_in_another_format_is_one_line_and_the_site_is_built(tmp_path):
    """A costs.json the site cannot read (another tool's format) is skipped with one line naming it, as a bad results
    file is; the runs are listed without its costs."""
    from click.testing import CliRunner

    from fiqa_bench.cli.main import main

    src = Path(__file__).resolve().parents[1] / "reports" / "lfw"
    folder = tmp_path / "runs"
    folder.mkdir()
    for p in sorted(src.glob("lfw__none__dlib__*")):
        shutil.copy(p, folder / p.name)
    (folder / "costs.json").write_text(json.dumps({"machine": {"cpu": "x86_64"}, "rows": []}))
    res = CliRunner().invoke(main, ["leaderboard", str(folder), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("skipped ")]
    assert lines == [
        f"skipped {(folder / 'costs.json').resolve()}: malformed costs file: costs_schema_version None is not "
        "supported (this fiqa-bench reads version 1)"
    ]
    assert (tmp_path / "site" / "index.html").is_file()
    assert len(list((tmp_path / "site" / "results").glob("*.json"))) == 1
