"""The documentation's promises that a test can keep: README.md stays short, and its code examples run.

The README's adapter example (a quality method in the user's own package) is written to a temporary package,
imported, scored on two generated crops and passed through the conformance kit; its entry-point snippet is
installed as a temporary dist-info and must load that class under the card's name. The docs pages that show the
same example, a protocol and a metric are checked the same way, so none of them can drift from the API unnoticed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from fiqa_bench.testing import check_method, synthetic_inputs

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 220
ADAPTER_MARK = "# my_fiqa/quality.py"


def _blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in a Markdown text, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def _block_starting(path: Path, language: str, first_line: str) -> str:
    found = [b for b in _blocks(path.read_text(encoding="utf-8"), language) if b.startswith(first_line)]
    assert len(found) == 1, (
        f"{path.name}: expected one ```{language} block starting with {first_line!r}, found {len(found)}"
    )
    return found[0]


@pytest.fixture()
def user_package(tmp_path, monkeypatch):
    """A folder on sys.path for a throwaway ``my_fiqa`` package; its modules are forgotten afterwards."""
    (tmp_path / "my_fiqa").mkdir()
    (tmp_path / "my_fiqa" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "my_fiqa" or m.startswith("my_fiqa.")]:
        del sys.modules[name]


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; at most {README_MAX_LINES} (move details into docs/)"


def test_readme_adapter_example_runs(user_package):
    code = _block_starting(README, "python", ADAPTER_MARK)
    assert len(code.splitlines()) <= 12, "the README's adapter example should stay about ten lines"
    (user_package / "my_fiqa" / "quality.py").write_text(code)
    from my_fiqa.quality import MyQuality  # type: ignore[import-not-found]

    method = MyQuality()
    crops = synthetic_inputs(method.card.input, n=2, seed=0)
    scores = method.score(crops)
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float32 and scores.shape == (2,)
    assert np.isfinite(scores).all()
    check_method(method)  # the whole conformance kit, light imports included


def test_readme_entry_point_loads_the_example(user_package):
    code = _block_starting(README, "python", ADAPTER_MARK)
    (user_package / "my_fiqa" / "quality.py").write_text(code)
    toml = _block_starting(README, "toml", '[project.entry-points."fiqa_bench.methods"]')
    entries = re.findall(r'^([\w.-]+)\s*=\s*"([^"]+)"\s*$', toml, flags=re.M)
    assert len(entries) == 1, toml
    name, target = entries[0]
    # what `pip install` of the user's package writes: a dist-info with the entry point
    dist = user_package / "my_fiqa-0.0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-fiqa\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text(f"[fiqa_bench.methods]\n{name} = {target}\n")
    found = [
        ep
        for d in importlib.metadata.distributions(path=[str(user_package)])
        for ep in d.entry_points
        if ep.group == "fiqa_bench.methods"
    ]
    assert [ep.name for ep in found] == [name]
    cls = found[0].load()
    assert cls.__name__ == "MyQuality" and cls.card.name == name


def test_docs_adapter_page_shows_the_readme_example():
    readme = _block_starting(README, "python", ADAPTER_MARK)
    page = _block_starting(DOCS / "writing-an-adapter.md", "python", ADAPTER_MARK)
    assert page == readme


def test_docs_protocol_example_loads(user_package):
    code = _block_starting(DOCS / "writing-a-protocol.md", "python", "# my_fiqa/protocol.py")
    (user_package / "my_fiqa" / "protocol.py").write_text(code)
    data = user_package / "data"
    data.mkdir()
    (data / "faces.csv").write_text(
        "path,identity,template\na/1.jpg,ann,0\na/2.jpg,ann,1\nb/1.jpg,bob,2\nb/2.jpg,bob,3\n"
    )
    (data / "pairs.csv").write_text("a,b,label\n0,1,1\n2,3,1\n0,2,0\n1,3,0\n")
    from my_fiqa.protocol import MyTemplates  # type: ignore[import-not-found]

    bench = MyTemplates(data).load()
    assert bench.metric == "tpr_at_fpr" and len(bench.faces) == 4 and bench.pairs["label"].tolist() == [1, 1, 0, 0]
    assert bench.faces["identity"].tolist() == ["ann", "ann", "bob", "bob"]


def test_docs_metric_example_computes(user_package):
    code = _block_starting(DOCS / "writing-a-metric.md", "python", '"""Equal error rate')
    from fiqa_bench.metrics.base import MetricOptions, PairData, get_metric

    # the page's module in the user's package, registered by the page's entry-point snippet
    (user_package / "my_fiqa" / "eer.py").write_text(code)
    toml = _block_starting(DOCS / "writing-a-metric.md", "toml", '[project.entry-points."fiqa_bench.metrics"]')
    info = user_package / "my_fiqa-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my_fiqa\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        toml.replace('[project.entry-points."fiqa_bench.metrics"]', "[fiqa_bench.metrics]").replace('"', "")
    )
    metric = get_metric("eer")  # found without clearing the registry's cache: the folder on sys.path changed
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], dtype=np.float32)
    labels = np.array([1, 1, 1, 0, 0, 0], dtype=np.int8)
    data = PairData(scores=scores, labels=labels, folds=np.full(6, -1, np.int8), quality=np.full(6, np.nan, np.float32))
    value = metric.measure(data, MetricOptions())
    # one genuine pair (0.3) below one impostor pair (0.7): at the crossing 1 of 3 of each side errs
    assert value["eer"] == pytest.approx(1 / 3)
    assert metric.headline(value) == [("EER value", pytest.approx(1 / 3))]
