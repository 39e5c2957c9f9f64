"""``--method-option KEY=VALUE``: options reach the method's constructor, bad ones are named errors, variants get
their own results files and never share cached quality scores, and reports tell them apart."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import textwrap

import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main
from fiqa_bench.config import RunConfig
from fiqa_bench.errors import OptionError
from fiqa_bench.pipeline.runner import check_method_options, run
from fiqa_bench.results.record import results_stem, settings_digest
from fiqa_bench.writers.report import load_results, render_markdown


def _cfg(bench, backbone, tmp_path, **kw) -> RunConfig:
    return RunConfig(protocol=str(bench), backbone=backbone, out=str(tmp_path / "out"), progress=False, **kw)


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------ no data needed
def test_results_stem_is_readable_and_the_digest_covers_the_settings():
    assert (
        results_stem("mini", "tinyfq", "onnx:mobilefacenet.onnx", "top1", None, "abcd1234")
        == "mini__tinyfq__onnx-mobilefacenet.onnx__top1__abcd1234"
    )
    assert results_stem("mini", "tinyfq", "dlib", "topk", 2, "00ff00ff") == "mini__tinyfq__dlib__topk-k2__00ff00ff"
    a = settings_digest({"method_options": {"weights": "/w/tinyfq-none.onnx"}})
    b = settings_digest({"method_options": {"weights": "/w/tinyfq-smooth.onnx"}})
    assert a != b and len(a) == 8
    # stable: the same settings (in any order) give the same digest
    two = {"weights": "/w/x.onnx", "batch_size": "8"}
    assert settings_digest({"o": two}) == settings_digest({"o": dict(reversed(list(two.items())))})


def test_run_config_checks_options():
    cfg = RunConfig(protocol="p", backbone="dlib", method="tinyfq", method_options={"weights": "w.onnx", "b": 1})
    assert cfg.method_options == (("b", "1"), ("weights", "w.onnx"))  # sorted pairs of strings
    with pytest.raises(OptionError, match="need a quality method"):
        RunConfig(protocol="p", backbone="dlib", method_options=(("weights", "w.onnx"),))
    with pytest.raises(OptionError, match="'weights' given more than once"):
        RunConfig(protocol="p", backbone="dlib", method="tinyfq", method_options=(("weights", "a"), ("weights", "b")))


def test_unknown_and_reserved_options_name_the_method_and_option():
    with pytest.raises(
        OptionError,
        match=r"method 'tinyfq' has no option 'weight'\. Did you mean 'weights'\? "
        r"Its options: weights, batch_size",
    ):
        check_method_options("tinyfq", {"weight": "x.onnx"})
    with pytest.raises(OptionError, match=r"method 'blur' has no option 'weights'\. Its options: none"):
        check_method_options("blur", {"weights": "x"})
    with pytest.raises(
        OptionError, match=r"method 'svm' has no option 'weights'\. Its options: model, backbone_options"
    ):
        check_method_options("svm", {"weights": "x"}, {"backbone": "passed"})
    with pytest.raises(OptionError, match=r"method 'random': option 'seed' cannot be given.*--seed"):
        run(RunConfig(protocol="p", backbone="dlib", method="random", method_options={"seed": "3"}))
    check_method_options("faceqnet", {"weights": "x.onnx", "batch_size": "8"})  # both taken


def test_cli_bad_option_is_one_clear_line(tmp_path):
    base = ["run", "--fr", "dlib", "--protocol", "lfw-templates", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(main, base + ["--method", "tinyfq", "--method-option", "weight=x.onnx"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "error: method 'tinyfq' has no option 'weight'. Did you mean 'weights'?" in res.output
    res = CliRunner().invoke(main, base + ["--method", "tinyfq", "--method-option", "weights"])
    assert res.exit_code == 2 and "expected KEY=VALUE, got 'weights'" in res.output
    res = CliRunner().invoke(main, base + ["--method-option", "weights=x.onnx"])
    assert res.exit_code == 2 and "need a quality method (--method)" in res.output


# ------------------------------------------------------------------------------------------ real runs
@pytest.fixture(scope="module")
def two_tinyfq_weights(tmp_path_factory):
    """Two tinyFQnet ONNX files with different (freshly initialised) weights, exported like trained ones."""
    torch = pytest.importorskip("torch")
    from fiqa_bench.training.export import export_onnx
    from fiqa_bench.training.nets import build_net

    folder = tmp_path_factory.mktemp("weights")
    paths = []
    for seed, name in ((1, "tinyfq-none.onnx"), (2, "tinyfq-smooth.onnx")):
        torch.manual_seed(seed)
        model = build_net("tinyfqnet").eval()
        paths.append(export_onnx(model, folder / name, net="tinyfqnet", input_size=64, card={"seed": seed}))
    return paths


@pytest.mark.shared
def test_weights_variants_get_own_results_and_never_share_cached_scores(
    small_bench, mbf, tmp_path, isolated_cache, two_tinyfq_weights
):
    none_w, smooth_w = two_tinyfq_weights
    assert _sha256(none_w) != _sha256(smooth_w)

    # (a) the option reaches TinyFQ(weights=...): the method's identity carries that file's sha256
    path_a, a = run(_cfg(small_bench, mbf, tmp_path, method="tinyfq", method_options={"weights": str(none_w)}))
    n = a["counts"]["images"]
    assert a["method"]["options"] == {"weights": str(none_w)}
    assert a["method"]["options_sha256"] == {"weights": _sha256(none_w)}
    assert a["method"]["identity"].endswith(_sha256(none_w)[:16])
    assert a["counts"]["images_scored_new"] == n
    written = json.loads(path_a.read_text())
    assert written["method"]["options"] == {"weights": str(none_w)}
    assert written["config"]["method_options"] == {"weights": str(none_w)}

    # (b) other weights: another results file, every score computed again (nothing from the first cache)
    path_b, b = run(_cfg(small_bench, mbf, tmp_path, method="tinyfq", method_options={"weights": str(smooth_w)}))
    assert path_b != path_a and path_a.is_file() and path_b.is_file()
    assert b["method"]["identity"] != a["method"]["identity"]
    assert b["counts"]["images_scored_new"] == n

    # the same bytes under another name share the cache and the results file (both keyed on content: the same
    # weights cannot change a number)
    copy = tmp_path / "copy" / "tinyfq-none-copy.onnx"
    copy.parent.mkdir()
    shutil.copy(none_w, copy)
    path_c, c = run(_cfg(small_bench, mbf, tmp_path, method="tinyfq", method_options={"weights": str(copy)}))
    assert c["counts"]["images_scored_new"] == 0 and path_c == path_a
    assert c["metrics"]["tpr_at_fpr"] == a["metrics"]["tpr_at_fpr"]

    # the bundled weights, no options: today's file name, and its own scores
    path_d, d = run(_cfg(small_bench, mbf, tmp_path, method="tinyfq"))
    assert path_d.name.startswith("mini__tinyfq__onnx-mobilefacenet.onnx__top1__")
    assert path_d not in (path_a, path_b)
    assert d["method"]["options"] == {} and d["counts"]["images_scored_new"] == n

    # the report tells the variants apart by the weights' base names
    rows = [line for line in render_markdown(load_results(tmp_path / "out")).splitlines() if "tinyfq" in line]
    labels = {line.split("|")[2].strip() for line in rows if line.startswith("| ") and "Options" not in line}
    # (the copy's run replaced the first run's file: same content, same settings)
    assert {"tinyfq", r"tinyfq \[weights=tinyfq-smooth.onnx\]", r"tinyfq \[weights=tinyfq-none-copy.onnx\]"} <= labels

    # (c) a value the constructor rejects is a named error, not a traceback
    with pytest.raises(
        OptionError,
        match=r"method 'tinyfq' rejected its options \(batch_size=0, weights=.*\): "
        r"ValueError: batch_size must be >= 1",
    ):
        run(
            _cfg(
                small_bench, mbf, tmp_path, method="tinyfq", method_options={"weights": str(none_w), "batch_size": "0"}
            )
        )


OPTION_METHOD = """
import numpy as np
from fiqa_bench.api import QualityMethod
from fiqa_bench.api.cards import InputSpec, MethodCard

class Scaled(QualityMethod):
    card = MethodCard(name="scaled", version="1", summary="mean intensity to a power (tests)", licence="MIT",
                      input=InputSpec("aligned", 32, "RGB"))
    made_with = []

    def __init__(self, power="1"):
        self.power = float(power)
        Scaled.made_with.append(power)

    def score(self, images):  # identity() (the card only) ignores the option on purpose
        return np.asarray(images, np.float32).reshape(len(images), -1).mean(axis=1) ** self.power
"""


@pytest.fixture()
def option_plugin(tmp_path, monkeypatch):
    """A third-party method whose identity() does not reflect its constructor option."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "scaled_fiqa.py").write_text(textwrap.dedent(OPTION_METHOD))
    info = site / "scaled_fiqa-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: scaled-fiqa\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fiqa_bench.methods]\nscaled = scaled_fiqa:Scaled\n")
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("scaled_fiqa", None)


@pytest.mark.shared
def test_plugin_options_key_the_cache_even_when_identity_ignores_them(
    small_bench, mbf, tmp_path, isolated_cache, option_plugin
):
    _, one = run(_cfg(small_bench, mbf, tmp_path, method="scaled", method_options={"power": "1"}))
    _, two = run(_cfg(small_bench, mbf, tmp_path, method="scaled", method_options={"power": "2"}))
    import scaled_fiqa

    assert scaled_fiqa.Scaled.made_with == ["1", "2"]  # strings, as given
    assert one["method"]["identity"] == two["method"]["identity"]
    assert two["counts"]["images_scored_new"] == two["counts"]["images"]  # not served power=1's scores
    _, again = run(_cfg(small_bench, mbf, tmp_path, method="scaled", method_options={"power": "2"}))
    assert again["counts"]["images_scored_new"] == 0


@pytest.mark.shared
def test_cli_method_option_runs_writes_its_own_file_and_labels_the_report(
    small_bench, mbf, tmp_path, isolated_cache, two_tinyfq_weights
):
    out = tmp_path / "out"
    base = [
        "run",
        "--method",
        "tinyfq",
        "--fr",
        mbf,
        "--protocol",
        str(small_bench),
        "--out",
        str(out),
        "--no-progress",
    ]
    for weights in two_tinyfq_weights:
        res = CliRunner().invoke(main, base + ["--method-option", f"weights={weights}"])
        assert res.exit_code == 0, res.output
        assert f"mini | onnx:mobilefacenet.onnx | tinyfq [weights={weights}] | top1" in res.output
    files = sorted(p.name for p in out.glob("mini__tinyfq__*__top1__*.json"))
    assert len(files) == 2
    md = (out / "report.md").read_text()
    assert r"| tinyfq \[weights=tinyfq-none.onnx\] |" in md.replace("**", "")
    assert r"| tinyfq \[weights=tinyfq-smooth.onnx\] |" in md.replace("**", "")
    res = CliRunner().invoke(main, base + ["--method-option", "batch_size=x"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "error: method 'tinyfq': option 'batch_size' must be an integer, got 'x'" in res.output
    # the backbone's options (--fr-option) get the same one-line error, naming the backbone
    res = CliRunner().invoke(main, base + ["--fr-option", "normalisation=bogus"])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert f"error: backbone {mbf!r} rejected its options (normalisation=bogus): ValueError" in res.output
    # typed options, checked before any work: an unknown name, a bool that is not one
    res = CliRunner().invoke(main, base + ["--fr-option", "colour_order=RGB"])
    assert res.exit_code == 2 and f"error: backbone {mbf!r} has no option 'colour_order'" in res.output
    res = CliRunner().invoke(main, base + ["--fr-option", "flip=perhaps"])
    assert res.exit_code == 2 and "option 'flip' must be true or false, got 'perhaps'" in res.output
