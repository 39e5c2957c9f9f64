"""Reports from hand-written results dicts: layout, bolding, nulls, ordering, refusals, escaping."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser

import pytest

from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.writers.report import load_results, render_html, render_markdown, write_report

KEYS = ["1e-1", "1e-2", "1e-3", "1e-4", "1e-5"]


def result(method, backbone, tpr=None, accuracy=None, protocol="ijbc", version="1", pairs="p" * 64, selection="top1"):
    metrics = (
        {"tpr_at_fpr": {"values": dict(zip(KEYS, tpr)), "detail": {}, "reading": "conservative"}}
        if tpr is not None
        else {"accuracy": accuracy}
    )
    return {
        "schema_version": 2,
        "suite": {"version": "0.1.0", "git_commit": "0123456789abcdef"},
        "method": {"name": method, "version": "1", "card_hash": "c" * 16},
        "backbone": {"name": backbone, "version": "1", "weights_sha256": "w" * 64, "card_hash": "b" * 16},
        "protocol": {
            "name": protocol,
            "version": version,
            "metric": "tpr_at_fpr" if tpr else "kfold_accuracy",
            "metrics": list(metrics),
            "faces_sha256": "f" * 64,
            "pairs_sha256": pairs,
        },
        "config": {"selection": selection, "seed": 0},
        "settings": {"selection": selection},
        "counts": {"genuine": 19_557, "impostor": 15_638_932},
        "timings": {},
        "metrics": metrics,
        "_source": f"{protocol}-{method}-{backbone}-{selection}-{version}.json",
    }


def ijb_results():
    return [
        result("tinyfqnet", "r50", [0.9629, 0.9477, 0.9305, 0.9112, 0.8768]),
        result("random", "r50", [0.9224, 0.8788, 0.8311, 0.7675, 0.6842]),
        result("blur", "r50", [0.9433, 0.9069, 0.8732, 0.8328, None]),
        result("rqs", "r50", [0.9617, 0.9421, 0.9305, 0.8972, 0.8536]),  # ties tinyfqnet at 1e-3
        result("random", "mbf", [0.9231, 0.8766, 0.8297, 0.7551, 0.5160]),
        result("jpeg", "mbf", [0.9617, 0.9373, 0.9184, 0.8867, 0.8102]),
    ]


def table_rows(markdown: str, heading_fragment: str) -> list[list[str]]:
    """Body rows (cells stripped) of the first table after the heading containing the fragment."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## ") and heading_fragment in line)
    body, in_table = [], False
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            if in_table and not line.startswith("|---"):
                body.append([c.strip() for c in line.strip("|").split("|")])
            in_table = True
        elif in_table:
            break
    return body[1:] if body and body[0][0] == "FR model" else body


def ijb_marks():
    """What paired comparisons would say: jpeg (mbf) separated everywhere; on r50 tinyfqnet separated except at
    1e-3, where it ties with rqs."""
    cols = [f"TPR@FPR={k}" for k in KEYS]
    return {
        "ijbc-jpeg-mbf-top1-1.json": {c: "best" for c in cols},
        "ijbc-tinyfqnet-r50-top1-1.json": {**{c: "best" for c in cols}, "TPR@FPR=1e-3": "tie"},
        "ijbc-rqs-r50-top1-1.json": {"TPR@FPR=1e-3": "tie"},
    }


def test_no_best_is_marked_without_paired_comparisons():
    md = render_markdown(ijb_results())
    assert "**" not in "\n".join(line for line in md.splitlines() if line.startswith("| "))
    assert "No best is marked" in md


def test_markdown_layout_bold_and_order():
    md = render_markdown(ijb_results(), marks=ijb_marks())
    header = next(line for line in md.splitlines() if line.startswith("| FR model"))
    assert header == (
        "| FR model | Method | TPR (%) @ FPR=1e-1 | TPR (%) @ FPR=1e-2 | TPR (%) @ FPR=1e-3 "
        "| TPR (%) @ FPR=1e-4 | TPR (%) @ FPR=1e-5 |"
    )
    rows = table_rows(md, "ijbc")
    # FR models alphabetically (mbf, r50); inside a block the random baseline first, then by name.
    assert [r[:2] for r in rows] == [
        ["mbf", "random"],
        ["", "jpeg"],
        ["r50", "random"],
        ["", "blur"],
        ["", "rqs"],
        ["", "tinyfqnet"],
    ]
    # mbf block: jpeg best everywhere except... it is best in every column (two rows).
    assert rows[1][2:] == ["**96.17**", "**93.73**", "**91.84**", "**88.67**", "**81.02**"]
    assert rows[0][2:] == ["92.31", "87.66", "82.97", "75.51", "51.60"]
    # r50 block: tinyfqnet best, tied with rqs at 1e-3 (both marked †), blur's null is a footnoted dash.
    assert rows[5][2:] == ["**96.29**", "**94.77**", "93.05 †", "**91.12**", "**87.68**"]
    assert rows[4][2:] == ["96.17", "94.21", "93.05 †", "89.72", "85.36"]
    assert rows[3][6] == "—[^1]"
    assert rows[2][2:] == ["92.24", "87.88", "83.11", "76.75", "68.42"]


def test_paper_methods_in_the_papers_order_then_others_by_name():
    names = ["zeta", "tinyfq", "faceqnet", "rqs", "svm", "combination", "jpeg", "pose", "blur", "alpha", "random"]
    rs = [result(n, "r50", [0.9, 0.8, 0.7, 0.6, 0.5]) for n in names]
    assert [r[1] for r in table_rows(render_markdown(rs), "ijbc")] == [
        "random",
        "blur",
        "pose",
        "jpeg",
        "combination",
        "svm",
        "rqs",
        "faceqnet",
        "tinyfq",
        "alpha",
        "zeta",
    ]


def test_null_footnote_uses_reason_when_given():
    rs = ijb_results()
    rs[2]["metrics"]["tpr_at_fpr"]["detail"] = {
        "1e-5": {"tpr": None, "reason": "FPR 1e-5 needs at least 100000 impostor pairs"}
    }
    md = render_markdown(rs)
    assert "[^1]: — FPR 1e-5 needs at least 100000 impostor pairs" in md
    page = render_html(rs)
    assert '<sup><a href="#note-1">1</a></sup>' in page and "needs at least 100000 impostor pairs" in page
    # Without a detailed reason: the counts say the pair list is big enough, so the generic text is used.
    md2 = render_markdown(ijb_results())
    assert "[^1]: — TPR@FPR=1e-5 could not be measured in this run" in md2


def test_null_reason_from_counts_and_missing_key():
    small = result("blur", "r50", [0.9, 0.8, None, None, None], protocol="lfw-templates")
    small["counts"] = {"impostor": 300}
    other = result("jpeg", "r50", [0.95, 0.85, 0.7, None, None], protocol="lfw-templates")
    other["counts"] = {"impostor": 300}
    del other["metrics"]["tpr_at_fpr"]["values"]["1e-5"]  # not computed at all
    md = render_markdown([small, other])
    assert "needs at least 1000 impostor pairs; this protocol has 300" in md
    assert "FPR 1e-5 was not computed in this run" in md
    rows = table_rows(md, "lfw-templates")
    assert rows[0][1] == "blur" and rows[0][4] == "—[^1]"  # 1e-3 null for blur only: no bold for jpeg
    assert rows[1][4] == "70.00"


def test_single_value_in_block_is_not_bold():
    md = render_markdown([result("blur", "r50", [0.9, 0.8, 0.7, 0.6, 0.5])])
    assert "**" not in "\n".join(line for line in md.splitlines() if line.startswith("| r50"))


def test_kfold_table_like_table5():
    rs = [
        result("random", "r50", accuracy={"mean": 0.9634, "std": 0.0081, "folds": [0.9634] * 10}, protocol="ytf"),
        result("tinyfqnet", "r50", accuracy={"mean": 0.9702, "std": 0.0065, "folds": [0.9702] * 10}, protocol="ytf"),
        result("svm", "r50", accuracy={"mean": 0.9557, "std": 0.01, "folds": [0.9557] * 10}, protocol="ytf"),
        result("tinyfqnet", "effnet", accuracy={"mean": 0.97, "std": 0.005, "folds": [0.97] * 10}, protocol="ytf"),
        result("rqs", "effnet", accuracy={"mean": 0.9702, "std": 0.004, "folds": [0.9702] * 10}, protocol="ytf"),
    ]
    md = render_markdown(rs)
    assert "| FR model | Method | Accuracy (%) mean ± std |" in md
    assert table_rows(md, "ytf") == [
        ["effnet", "rqs", "97.02 ± 0.40"],
        ["", "tinyfqnet", "97.00 ± 0.50"],
        ["r50", "random", "96.34 ± 0.81"],
        ["", "svm", "95.57 ± 1.00"],
        ["", "tinyfqnet", "97.02 ± 0.65"],
    ]


def test_sections_per_protocol_and_selection():
    rs = ijb_results() + [result("blur", "r50", [0.95, 0.9, 0.85, 0.8, 0.75], selection="top3")]
    md = render_markdown(rs)
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings == ["## ijbc — selection: top1", "## ijbc — selection: top3", "## Runs"]


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.bold = [], [], []
        self._in_b = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_b = self._in_b or tag == "b"

    def handle_endtag(self, tag):
        if tag == "b":
            self._in_b = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_b:
            self.bold.append(data)


def test_html_is_self_contained_and_bolds_like_markdown():
    page = render_html(ijb_results(), marks=ijb_marks())
    parser = _Collect()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert "style" in tags and "table" in tags
    assert not any(t in ("script", "link", "img") for t in tags)
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert sorted(parser.bold) == sorted(
        ["96.17", "93.73", "91.84", "88.67", "81.02", "96.29", "94.77", "91.12", "87.68"]
    )
    assert page.count('class="num tie"') == 2
    fr_cells = [a for t, a in parser.tags if t == "td" and a.get("class") == "fr"]
    assert [c["rowspan"] for c in fr_cells] == ["2", "4"]


def test_html_and_markdown_escape_names():
    nasty = result("<script>alert('x')</script>", 'r50 | & "q"', [0.9, 0.8, 0.7, 0.6, 0.5])
    page = render_html([nasty])
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "r50 | &amp; &#34;q&#34;" in page
    md = render_markdown([nasty])
    row = next(line for line in md.splitlines() if "alert" in line and "Runs" not in line)
    assert 'r50 \\| & "q"' in row and "\\<script\\>" in row
    # The escaped pipe keeps the row at 7 cells.
    assert len(re.split(r"(?<!\\)\|", row.strip().strip("|"))) == 7


def test_mixing_protocol_versions_is_refused(tmp_path):
    a = result("blur", "r50", [0.9] * 5)
    b = result("jpeg", "r50", [0.8] * 5, version="2")
    for name, r in (("a.json", a), ("b.json", b)):
        (tmp_path / name).write_text(json.dumps(r))
    with pytest.raises(FiqaBenchError, match=r"(?s)protocol 'ijbc'.*different protocol versions.*a\.json.*b\.json"):
        load_results(tmp_path)
    with pytest.raises(FiqaBenchError, match="different protocol versions"):
        render_markdown([a, b])


def test_mixing_pair_lists_is_refused():
    a = result("blur", "r50", [0.9] * 5)
    b = result("jpeg", "r50", [0.8] * 5, pairs="q" * 64)
    with pytest.raises(FiqaBenchError, match="(?s)pairs pppppppppppp.*pairs qqqqqqqqqqqq"):
        render_html([a, b])
    # Another protocol name with another version is fine.
    c = result("jpeg", "r50", [0.8] * 5, protocol="ijbb", version="2", pairs="q" * 64)
    assert "ijbb" in render_markdown([a, c])


def test_tpr_readings_are_shown_and_label_the_rows_they_split():
    a = result("blur", "r50", [0.9] * 5)
    b = result("jpeg", "r50", [0.8] * 5)
    for r in (a, b):
        r["config"]["fpr_reading"] = r["settings"]["fpr_reading"] = "conservative"
    assert "TPR read conservative" in render_markdown([a, b])
    c = copy.deepcopy(b)
    c["config"]["fpr_reading"] = c["settings"]["fpr_reading"] = "nearest"
    c["metrics"]["tpr_at_fpr"]["values"] = dict(zip(KEYS, [0.85] * 5))
    md = render_markdown([a, b, c])
    assert "TPR read conservative / nearest" in md
    rows = table_rows(md, "ijbc")
    assert [r[1] for r in rows] == ["blur", "jpeg {reading=conservative}", "jpeg {reading=nearest}"]
    assert "reading=nearest" in md[md.index("## Runs") :]


def test_duplicate_cell_is_refused():
    a = result("blur", "r50", [0.9] * 5)
    with pytest.raises(FiqaBenchError, match="same table cell"):
        render_markdown([a, copy.deepcopy(a)])


def test_same_name_different_versions_are_labelled():
    a = result("blur", "r50", [0.9] * 5)
    b = result("blur", "r50", [0.8] * 5)
    b["method"]["version"] = "2"
    rows = table_rows(render_markdown([a, b]), "ijbc")
    assert [r[1] for r in rows] == ["blur v1", "blur v2"]


def variant(path, tpr, sha=None, **options):
    """A tinyfq result run with ``--method-option weights=PATH`` (and any other options)."""
    r = result("tinyfq", "r50", tpr)
    r["method"]["options"] = {"weights": path, **options} if path else dict(options)
    r["method"]["options_sha256"] = {"weights": sha or (path.rsplit("/", 1)[-1][:1] * 64)} if path else {}
    return r


def table7_results():
    return [
        variant("/models/tinyfq-none.onnx", [0.90] * 5, "1" * 64),
        variant("/models/tinyfq-random.onnx", [0.91] * 5, "2" * 64),
        variant("/models/tinyfq-smooth.onnx", [0.92] * 5, "3" * 64),
        result("tinyfq", "r50", [0.93] * 5),  # the bundled weights, no options
        result("random", "r50", [0.80] * 5),
    ]


def test_weights_variants_of_one_method_are_labelled_by_their_options():
    md = render_markdown(table7_results())
    rows = table_rows(md, "ijbc")
    assert [r[1] for r in rows] == [
        "random",
        "tinyfq",
        r"tinyfq \[weights=tinyfq-none.onnx\]",
        r"tinyfq \[weights=tinyfq-random.onnx\]",
        r"tinyfq \[weights=tinyfq-smooth.onnx\]",
    ]
    assert rows[1][2] == "93.00" and rows[4][2] == "92.00"
    assert "<td>tinyfq [weights=tinyfq-random.onnx]</td>" in render_html(table7_results())
    # the Runs table gives each run's options: files by base name with their sha256
    runs = [line for line in md[md.index("## Runs") :].splitlines() if "tinyfq" in line]
    assert sum("weights=tinyfq-smooth.onnx (sha256 333333333333)" in line for line in runs) == 1
    assert "| Card hash | Options | Settings |" in md


def test_variant_labels_show_only_the_options_that_differ():
    rs = [variant("/m/a.onnx", [0.9] * 5, batch_size="64"), variant("/m/b.onnx", [0.8] * 5, batch_size="64")]
    assert [r[1] for r in table_rows(render_markdown(rs), "ijbc")] == [
        r"tinyfq \[weights=a.onnx\]",
        r"tinyfq \[weights=b.onnx\]",
    ]
    rs = [variant("/m/a.onnx", [0.9] * 5, batch_size="8"), variant("/m/a.onnx", [0.8] * 5, batch_size="64")]
    assert [r[1] for r in table_rows(render_markdown(rs), "ijbc")] == [
        r"tinyfq \[batch\_size=64\]",
        r"tinyfq \[batch\_size=8\]",
    ]


def test_variant_labels_fall_back_to_versions_and_weights_hashes():
    # same base name in two folders: the weights' sha256 tells them apart
    rs = [variant("/run1/tinyfq.onnx", [0.9] * 5, "a" * 64), variant("/run2/tinyfq.onnx", [0.8] * 5, "b" * 64)]
    assert [r[1] for r in table_rows(render_markdown(rs), "ijbc")] == [
        r"tinyfq \[weights=tinyfq.onnx\] (weights aaaaaaaa)",
        r"tinyfq \[weights=tinyfq.onnx\] (weights bbbbbbbb)",
    ]
    # one path retrained in place (same options, other file content)
    rs = [variant("/m/t.onnx", [0.9] * 5, "a" * 64), variant("/m/t.onnx", [0.8] * 5, "b" * 64)]
    assert [r[1] for r in table_rows(render_markdown(rs), "ijbc")] == [
        "tinyfq (weights aaaaaaaa)",
        "tinyfq (weights bbbbbbbb)",
    ]
    # same options, different versions: the version labels as before
    a, b = variant("/m/t.onnx", [0.9] * 5), variant("/m/t.onnx", [0.8] * 5)
    b["method"]["version"] = "2"
    assert [r[1] for r in table_rows(render_markdown([a, b]), "ijbc")] == ["tinyfq v1", "tinyfq v2"]
    # the same variant twice is still one table cell
    with pytest.raises(FiqaBenchError, match="same table cell"):
        render_markdown([variant("/m/t.onnx", [0.9] * 5), variant("/m/t.onnx", [0.8] * 5)])


def test_malformed_method_options_are_refused(tmp_path):
    bad = variant("/m/t.onnx", [0.9] * 5)
    bad["method"]["options"] = ["weights", "/m/t.onnx"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(FiqaBenchError, match=r"bad\.json: method\.options must be an object of strings"):
        load_results(tmp_path)


def test_load_results_skips_other_json_and_validates(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "ok.json").write_text(json.dumps(result("blur", "r50", [0.9] * 5)))
    (tmp_path / "config.json").write_text(json.dumps({"something": "else"}))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.warns(UserWarning) as record:
        results = load_results(tmp_path)
    messages = " ".join(str(w.message) for w in record)
    assert "config.json: not a fiqa-bench results file" in messages and "broken.json: not readable" in messages
    assert len(results) == 1 and results[0]["_source"].endswith("ok.json")
    bad = result("blur", "r50", [0.9] * 5)
    bad["metrics"]["tpr_at_fpr"]["values"]["1e-1"] = 93.2  # percent instead of a fraction
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(FiqaBenchError, match=r"bad\.json: metrics\.tpr_at_fpr\['1e-1'\] = 93\.2 is not a fraction"):
        load_results(tmp_path)
    newer = result("blur", "r50", [0.9] * 5)
    newer["schema_version"] = 3
    with pytest.raises(FiqaBenchError, match="schema_version 3 is not 2"):
        render_markdown([newer])


def test_write_report_is_atomic_pure_and_repeatable(tmp_path):
    for i, r in enumerate(ijb_results()):
        (tmp_path / f"r{i}.json").write_text(json.dumps(r))
    out = tmp_path / "out"
    paths = write_report(tmp_path, out)
    assert [p.name for p in paths] == ["report.md", "report.html"]
    first = [p.read_bytes() for p in paths]
    assert write_report(tmp_path, out) == paths
    assert [p.read_bytes() for p in paths] == first  # same input, same bytes
    assert sorted(x.name for x in out.iterdir()) == ["report.html", "report.md"]  # no temporary left over
    # Written next to the results by default, and the reports are not read back as results.
    write_report(tmp_path)
    assert len(load_results(tmp_path)) == 6
    with pytest.raises(FiqaBenchError, match="no results files"):
        write_report(tmp_path / "out")


def test_empty_results_render():
    assert "No results." in render_markdown([])
    assert "<p>No results.</p>" in render_html([])


def test_runner_shaped_single_image_record():
    """Single-image protocols: method "none" with null version/hash, weights without a sha256."""
    none = result("none", "dlib", accuracy={"mean": 0.9938, "std": 0.0031, "folds": [0.9938] * 10}, protocol="lfw")
    none["method"] = {"name": "none", "version": None, "card_hash": None, "identity": None}
    none["backbone"]["weights_sha256"] = None
    none["config"]["selection"] = "all"
    md = render_markdown([none])
    assert table_rows(md, "lfw — selection: all") == [["dlib", "none", "99.38 ± 0.31"]]
    assert "<td>none</td>" in render_html([none])
