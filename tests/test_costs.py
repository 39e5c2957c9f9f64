"""Costs (Table 2 layout): the ONNX counter, costs.json validation and rendering, and a smoke run of
benchmarks/bench_costs.py on real faces."""

from __future__ import annotations

import copy
import importlib.util
import json
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from _tiny_onnx import write_linear_model
from fiqa_bench.errors import FiqaBenchError
from fiqa_bench.models.onnx_info import OnnxReadError, onnx_costs
from fiqa_bench.writers.costs import validate_costs
from fiqa_bench.writers.report import load_results, write_report

ROOT = Path(__file__).resolve().parents[1]


def costs_dict() -> dict:
    """A costs.json as bench_costs writes it, with distinctive numbers to find in the report."""
    return {
        "costs_schema_version": 1,
        "machine": {
            "cpu_model": "Test CPU 9000",
            "cores": 2,
            "onnxruntime": "1.99.0",
            "threads": 2,
            "opencv": "5.0.0",
            "opencv_threads": 2,
            "numpy": "2.0",
            "python": "3.12",
            "platform": "Linux",
            "torch": None,
            "load_average_start": [0.25, 0.5, 0.75],
            "date": "2026-01-02T03:04:05+00:00",
        },
        "config": {
            "data": "lfw",
            "images": 64,
            "repeats": 5,
            "batch_size": 32,
            "detector": "yunet",
            "fr": "onnx:mobilefacenet.onnx",
            "command": "bench_costs.py",
        },
        "methods": [
            {
                "name": "blur",
                "need_aligning": "yes (112x112 crop)",
                "input": "aligned 112x112 RGB",
                "parameters": None,
                "parameters_note": "no learned model",
                "macs": None,
                "macs_note": "",
                "ms_single": 0.0756,
                "ms_batch": 0.0504,
                "skipped": None,
                "paper": {"need_aligning": "no", "parameters": "few", "computation": "low"},
                "notes": [],
                "components": [],
            },
            {
                "name": "tinyfq",
                "need_aligning": "yes (64x64 crop)",
                "input": "aligned 64x64 RGB",
                "parameters": 13366,
                "parameters_note": "counted in the ONNX initializers",
                "macs": 1331456,
                "macs_note": "from the ONNX graph",
                "ms_single": 0.2345,
                "ms_batch": 0.1278,
                "skipped": None,
                "paper": {"need_aligning": "yes", "parameters": "0.022", "computation": "0.0024"},
                "notes": [],
                "components": [],
            },
            {
                "name": "svm",
                "need_aligning": "yes (the FR model's aligned crop)",
                "input": "face",
                "parameters": 180344,
                "parameters_note": "1,398 support vectors x 128 dims",
                "macs": 180342,
                "macs_note": "RBF SVR",
                "ms_single": 21.73,
                "ms_batch": 20.61,
                "skipped": None,
                "paper": None,
                "notes": ["takes the decoded Face"],
                "components": [
                    {
                        "what": "FR embedding (onnx mobilefacenet.onnx)",
                        "parameters": 989952,
                        "macs": 233810432,
                        "flops_estimate": None,
                        "ms_single": 14.44,
                        "ms_batch": 13.81,
                        "note": "needed for every image",
                    }
                ],
            },
            {
                "name": "faceqnet",
                "need_aligning": "?",
                "parameters": None,
                "macs": None,
                "ms_single": None,
                "ms_batch": None,
                "skipped": "AdapterError: faceqnet: weights file not found: /x/faceqnet.onnx",
                "paper": None,
                "notes": [],
                "components": [],
            },
        ],
        "tinyfq_throughput": {
            "skipped": None,
            "model_images_per_s": {"single": 4264.4, "batch": 7824.6},
            "pipeline_images_per_s": {"single": 65.4, "batch": 75.2},
            "stages_ms": {"decode": 0.36, "detect": 13.1, "align": 1.12, "model": 1.14},
            "paper": "4 ms per image on a phone",
        },
        "networks": {
            "skipped": None,
            "rows": [
                {
                    "name": "mbv2-t4-w0.35-64",
                    "input_size": 64,
                    "parameters": 13366,
                    "parameters_torch": 13366,
                    "initializer_values": 14786,
                    "macs": 1331456,
                    "macs_torch": 1331456,
                    "norm_outputs": 95936,
                    "ms_single": 0.151,
                    "ms_batch": 0.0916,
                    "paper": {
                        "network": "mobilenet_t4_w0.35",
                        "input_size": "64x64",
                        "parameters": "0.013M",
                        "mflops": 1.43,
                    },
                }
            ],
        },
    }


def results_file() -> dict:
    return {
        "schema_version": 2,
        "suite": {"version": "0.1.0", "git_commit": "0123456789abcdef"},
        "method": {"name": "blur", "version": "1", "card_hash": "c" * 16},
        "backbone": {"name": "r50", "version": "1", "weights_sha256": "w" * 64, "card_hash": "b" * 16},
        "protocol": {
            "name": "ijbc",
            "version": "1",
            "metric": "tpr_at_fpr",
            "metrics": ["tpr_at_fpr"],
            "faces_sha256": "f" * 64,
            "pairs_sha256": "p" * 64,
        },
        "config": {"selection": "top1", "seed": 0},
        "settings": {"selection": "top1"},
        "counts": {"genuine": 10, "impostor": 100_000},
        "timings": {},
        "metrics": {
            "tpr_at_fpr": {"values": {"1e-1": 0.9433, "1e-2": 0.9069}, "detail": {}, "reading": "conservative"}
        },
    }


def write_folder(tmp_path: Path, costs: dict | str | None, with_results: bool = True) -> Path:
    if with_results:
        (tmp_path / "ijbc__blur__r50__top1.json").write_text(json.dumps(results_file()))
    if costs is not None:
        (tmp_path / "costs.json").write_text(costs if isinstance(costs, str) else json.dumps(costs))
    return tmp_path


# ------------------------------------------------------------------------------------------------ report
def test_report_renders_costs_section(tmp_path):
    folder = write_folder(tmp_path, costs_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # costs.json is not mistaken for a stray results file
        results = load_results(folder)
    assert len(results) == 1
    md_path, html_path = write_report(folder)
    md = md_path.read_text()
    assert md.index("## ijbc") < md.index("## Costs (Table 2 layout)") < md.index("## Runs")
    section = md[md.index("## Costs (Table 2 layout)") : md.index("## Runs")]
    assert "Test CPU 9000, 2 cores" in section and "onnxruntime 1.99.0 (CPU, 2 intra-op threads)" in section
    assert "load average at start 0.25, 0.50, 0.75" in section and "median of 5 repeats" in section
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    table2 = {r[0]: r for r in rows}
    assert table2["tinyfq"][1:7] == [
        "yes (64x64 crop)",
        "13,366 (0.0134 M)",
        "1.331",
        "0.23",
        "0.13",
        "yes · 0.022 · 0.0024",
    ]
    assert table2["blur"][2:6] == ["—", "—", "0.0756", "0.0504"]
    assert table2["svm"][2:6] == ["180,344 (0.18 M)", "0.1803", "21.7", "20.6"]
    assert table2["↳ svm: FR embedding (onnx mobilefacenet.onnx)"][2:6] == ["989,952 (0.99 M)", "233.8", "14.4", "13.8"]
    assert table2["faceqnet"][4:6] == ["—", "—"]
    assert "faceqnet: not measured: AdapterError: faceqnet: weights file not found" in section
    assert table2["model alone (aligned 64x64 crops in memory)"][1:] == ["4,264", "7,825"]
    assert table2["from the JPEG file (decode + detect + align + model)"][1:] == ["65", "75"]
    assert "detect 13.1 ms" in section and "Paper: 4 ms per image on a phone" in section
    assert table2["mbv2-t4-w0.35-64"][1:6] == ["64x64", "13,366 (0.0134 M)", "1.331", "0.15", "0.0916"]
    assert "ONNX initializers 13,366, nets.py 13,366 (equal)" in section

    page = html_path.read_text()
    HTMLParser().feed(page)
    assert '<section id="costs">' in page and "Costs (Table 2 layout)" in page
    for text in (
        "13,366 (0.0134 M)",
        "233.8",
        "4,264",
        "mobilenet_t4_w0.35 64x64: 0.013M · 1.43",
        "↳ svm: FR embedding (onnx mobilefacenet.onnx)",
        "Test CPU 9000",
    ):
        assert text in page, text
    assert page.index('<section id="costs">') < page.index("<h2>Runs</h2>")


def test_folder_with_only_costs_gives_a_costs_report(tmp_path):
    folder = write_folder(tmp_path, costs_dict(), with_results=False)
    md_path, html_path = write_report(folder)
    md = md_path.read_text()
    assert "No results files; costs only." in md and "| tinyfq | yes (64x64 crop) | 13,366 (0.0134 M)" in md
    assert "Costs (Table 2 layout)" in html_path.read_text()


def test_folder_without_results_or_costs_is_still_an_error(tmp_path):
    with pytest.raises(FiqaBenchError, match="no results files found"):
        write_report(tmp_path)


def _broken(edit) -> dict:
    d = copy.deepcopy(costs_dict())
    edit(d)
    return d


@pytest.mark.parametrize(
    "costs, message",
    [
        ("{not json", "not readable as JSON"),
        (_broken(lambda d: d.update(costs_schema_version=7)), "costs_schema_version 7 is not supported"),
        (_broken(lambda d: d.pop("machine")), "costs.machine is missing"),
        (_broken(lambda d: d["methods"][1].update(ms_single=-1.0)), r"methods\[1\].ms_single = -1.0 is not a positive"),
        (_broken(lambda d: d["methods"][0].update(ms_batch=None)), r"methods\[0\].ms_batch = None"),
        (_broken(lambda d: d["methods"][2].update(parameters="few")), r"methods\[2\].parameters = 'few'"),
        (_broken(lambda d: d["methods"][2]["components"][0].pop("what")), r"components\[0\].what is missing"),
        (_broken(lambda d: d["methods"].append(copy.deepcopy(d["methods"][0]))), "method 'blur' appears twice"),
        (_broken(lambda d: d["tinyfq_throughput"]["stages_ms"].pop("detect")), "stages_ms.detect is missing"),
        (_broken(lambda d: d["networks"]["rows"][0].update(input_size=0)), r"rows\[0\].input_size = 0"),
        (_broken(lambda d: d.update(methods=[])), "costs.methods = \\[\\] is not a non-empty list"),
    ],
)
def test_malformed_costs_file_is_an_error_naming_it(tmp_path, costs, message):
    folder = write_folder(tmp_path, costs)
    with pytest.raises(FiqaBenchError, match=message) as info:
        write_report(folder)
    assert str(folder / "costs.json") in str(info.value) and "malformed costs file" in str(info.value)
    assert not (folder / "report.md").exists()


# ------------------------------------------------------------------------------------------------ ONNX counter
def test_onnx_counter_on_a_hand_built_model(tmp_path):
    w = np.random.default_rng(0).normal(size=(3 * 16 * 16, 7)).astype(np.float32)
    path = write_linear_model(tmp_path / "lin.onnx", w, batch="N", size=16)
    c = onnx_costs(path, (1, 3, 16, 16))
    assert c["parameters"] == c["initializer_values"] == 3 * 16 * 16 * 7
    assert c["macs"] == 3 * 16 * 16 * 7  # flatten(x) @ W: one multiply-add per weight per image
    assert c["ops"] == ["Flatten", "MatMul"]
    (tmp_path / "junk.onnx").write_bytes(b"\xff\xff\xff")
    with pytest.raises(OnnxReadError, match="junk.onnx"):
        onnx_costs(tmp_path / "junk.onnx")


def test_onnx_counter_equals_torch_counts(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from fiqa_bench.training.export import export_onnx
    from fiqa_bench.training.flops import count_flops
    from fiqa_bench.training.nets import build_net, count_parameters

    for name, size in (("tinyfqnet", 64), ("mbv2-t4-w0.35-112", 112)):
        model = build_net(name)
        path = export_onnx(model, tmp_path / f"{name}.onnx", net=name, input_size=size)
        c = onnx_costs(path, (1, 3, size, size))
        flops = count_flops(model, size)
        assert c["parameters"] == count_parameters(model)
        bn_stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
        relu6 = sum(isinstance(m, torch.nn.ReLU6) for m in model.modules())
        # the other stored values: Clip's min and max per ReLU6, and the (2, 3) axes of the pooling ReduceMean
        assert c["initializer_values"] == c["parameters"] + bn_stats + 2 * relu6 + 2
        assert (c["macs"], c["norm_outputs"]) == (flops.macs, flops.norm_outputs)
    assert onnx_costs(tmp_path / "tinyfqnet.onnx")["parameters"] == 13_366


# ------------------------------------------------------------------------------------------------ bench smoke
def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_costs", ROOT / "benchmarks" / "bench_costs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.shared
def test_bench_costs_smoke(shared, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from fiqa_bench.methods.faceqnet import bundled_weights as faceqnet_weights
    from fiqa_bench.methods.tinyfq import bundled_weights as tinyfq_weights
    from fiqa_bench.training.export import read_metadata
    from fiqa_bench.training.flops import count_flops
    from fiqa_bench.training.nets import build_net, count_parameters, tinyfqnet

    monkeypatch.setenv("FIQA_BENCH_MODELS", f"{shared}/models/yunet:{shared}/models/scrfd")
    bench = _bench_module()
    out = tmp_path / "costs"
    data = bench.main(
        [
            "--n",
            "2",
            "--repeats",
            "1",
            "--batch-size",
            "3",
            "--methods",
            "blur,faceqnet,tinyfq",
            "--nets",
            "tinyfqnet",
            "--shared",
            str(shared),
            "--out",
            str(out),
        ]
    )
    written = json.loads((out / "costs.json").read_text())
    assert written == json.loads(json.dumps(data))
    validate_costs(written, "costs.json")
    m = written["machine"]
    assert m["cores"] >= 1 and m["threads"] >= 1 and m["onnxruntime"] and len(m["load_average_start"]) == 3
    assert written["config"]["images"] == 2 and written["config"]["batch_size"] == 3
    rows = {r["name"]: r for r in written["methods"]}
    assert list(rows) == ["blur", "faceqnet", "tinyfq"]

    blur = rows["blur"]
    assert blur["parameters"] is None and blur["macs"] is None and blur["ms_single"] > 0 and blur["ms_batch"] > 0

    fq = rows["faceqnet"]
    assert fq["ms_single"] > 0 and fq["ms_batch"] > 0
    net = read_metadata(faceqnet_weights())["net"]
    model = build_net(net)  # independent of the ONNX reader: the torch network the file was exported from
    bn_stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    relu6 = sum(isinstance(mod, torch.nn.ReLU6) for mod in model.modules())
    assert fq["parameters"] == count_parameters(model) == 314_625
    assert fq["onnx"]["initializer_values"] == count_parameters(model) + bn_stats + 2 * relu6
    assert fq["macs"] == count_flops(model, 112).macs

    tq = rows["tinyfq"]
    if tinyfq_weights().is_file():
        assert tq["skipped"] is None and tq["parameters"] == 13_366 and tq["ms_single"] > 0
        t = written["tinyfq_throughput"]
        assert t["pipeline_images_per_s"]["single"] > 0 and t["model_images_per_s"]["batch"] > 0
    else:  # not trained yet: a stated reason, no numbers
        assert "no bundled weights" in tq["skipped"] and tq["ms_single"] is None
        assert "no bundled weights" in written["tinyfq_throughput"]["skipped"]

    (row,) = written["networks"]["rows"]
    assert row["name"] == "tinyfqnet" and row["input_size"] == 64
    assert row["parameters"] == row["parameters_torch"] == count_parameters(tinyfqnet()) == 13_366
    assert row["macs"] == row["macs_torch"] == 1_331_456 and row["ms_single"] > 0 and row["ms_batch"] > 0

    dets = {r["name"]: r for r in written["detectors"]}
    assert list(dets) == ["yunet", "scrfd"]
    for name, rel in (("yunet", "yunet/face_detection_yunet_2026may.onnx"), ("scrfd", "scrfd/scrfd_500m_kps.onnx")):
        c = onnx_costs(shared / "models" / rel, (1, 3, 640, 640))
        assert dets[name]["skipped"] is None and dets[name]["ms_single"] > 0
        assert (dets[name]["parameters"], dets[name]["macs"]) == (c["parameters"], c["macs"]) and c["macs"] > 0
    md = (out / "costs.md").read_text()
    assert "## Face detectors" in md and "| scrfd | 640x640 |" in md
    assert md.startswith("# Costs (Table 2 layout)") and "| faceqnet | yes (112x112 crop) | 314,625 (0.315 M) |" in md


# ------------------------------------------------------------------------------------------------ detectors
def test_detectors_section_renders_and_is_validated(tmp_path):
    costs = costs_dict()
    costs["detectors"] = [
        {
            "name": "yunet",
            "input_size": 640,
            "file": "y.onnx",
            "parameters": 53_104,
            "macs": 344_224_000,
            "ms_single": 4.321,
            "skipped": None,
            "note": "scales with the pixel count",
        },
        {
            "name": "scrfd",
            "input_size": 640,
            "file": None,
            "parameters": None,
            "macs": None,
            "ms_single": None,
            "skipped": "DownloadError: no weights",
            "note": "",
        },
    ]
    folder = write_folder(tmp_path, costs, with_results=False)
    write_report(folder)
    md = (folder / "report.md").read_text()
    assert "| yunet | 640x640 | 53,104 (0.0531 M) | 344.2 | 4.32 |" in md
    assert "scrfd: not measured: DownloadError: no weights" in md
    assert "344.2" in (folder / "report.html").read_text()
    costs["detectors"][0]["macs"] = -1
    with pytest.raises(FiqaBenchError, match=r"detectors\[0\].macs = -1"):
        (tmp_path / "bad").mkdir()
        write_report(write_folder(tmp_path / "bad", costs, with_results=False))


@pytest.mark.shared
def test_detector_multiply_adds_match_an_onnxruntime_run(shared):
    """SCRFD and YuNet are counted (the old reader gave up on both): every Conv's multiply-adds, recomputed here from
    the output shapes of one onnxruntime run at 640x640, add up to what onnx_costs reports."""
    import onnx
    import onnxruntime as ort

    for rel in ("models/yunet/face_detection_yunet_2026may.onnx", "models/scrfd/scrfd_500m_kps.onnx"):
        path = shared / rel
        model = onnx.load(str(path))
        weights = {t.name: tuple(t.dims) for t in model.graph.initializer}
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n.output[0]) for n in convs)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        outs = session.run([n.output[0] for n in convs], {name: np.zeros((1, 3, 640, 640), np.float32)})
        expected = sum(
            o.size * weights[n.input[1]][1] * int(np.prod(weights[n.input[1]][2:])) for n, o in zip(convs, outs)
        )
        c = onnx_costs(path, (1, 3, 640, 640))
        assert c["macs"] == expected > 100_000_000, rel
        assert c["parameters"] > 50_000 and c["macs_unavailable"] is None


def test_markdown_cells_are_escaped_once_for_report_and_costs():
    from fiqa_bench.writers.markdown import md_cell

    assert md_cell("a_b|c*d\n[e]<f>#`g`\\") == "a\\_b\\|c\\*d \\[e\\]\\<f\\>\\#\\`g\\`\\\\"


def test_float16_weights_converts_the_largest_tensors_until_the_file_fits(tmp_path):
    """export.float16_weights: the biggest weight goes to float16 first (through a Cast, so the graph still takes
    and gives float32), nothing is converted when the file already fits, and a budget no conversion can meet is
    an error."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    from fiqa_bench.training.export import float16_weights

    w = np.random.default_rng(1).normal(size=(3 * 16 * 16, 5)).astype(np.float32)
    model = onnx.load(str(write_linear_model(tmp_path / "lin.onnx", w, size=16)))
    size = model.ByteSize()
    assert float16_weights(model, size).ByteSize() == size  # fits already: unchanged
    half = float16_weights(model, size - 1)
    assert [t.data_type for t in half.graph.initializer] == [onnx.TensorProto.FLOAT16]
    assert [n.op_type for n in half.graph.node] == ["Cast", "Flatten", "MatMul"] and half.ByteSize() < size * 0.6
    x = np.random.default_rng(2).normal(size=(2, 3, 16, 16)).astype(np.float32)
    got = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    want = x.reshape(2, -1).astype(np.float64) @ w.astype(np.float16).astype(np.float64)
    assert got.dtype == np.float32 and np.abs(got - want).max() < 1e-3 * np.abs(want).max()
    with pytest.raises(ValueError, match="every weight in float16"):
        float16_weights(model, 100)
