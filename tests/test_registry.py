"""The plugin registry: entry points only, did-you-mean errors, visible load failures, cheap listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from fiqa_bench import registry
from fiqa_bench.errors import PluginLoadError, UnknownNameError


def _fake_distribution(tmp_path, name: str, group: str, entries: dict[str, str]):
    """A minimal installed distribution (dist-info on sys.path) declaring entry points, as pip would leave it."""
    info = tmp_path / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = [f"[{group}]"] + [f"{k} = {v}" for k, v in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_builtins_are_registered_through_entry_points():
    assert {"dlib", "onnx", "r50", "r100", "mbf"} <= set(registry.entries("backbone"))
    assert {"lfw", "ijbb", "ijbc", "ytf", "lfw-templates"} <= set(registry.entries("protocol"))
    assert {"random", "blur", "jpeg"} <= set(registry.entries("method"))
    assert registry.entries("backbone")["r50"].distribution == "fiqa-bench"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError) as err:
        registry.load_class("backbone", "r5O")
    msg = str(err.value)
    assert "Did you mean" in msg and "'r50'" in msg
    with pytest.raises(UnknownNameError, match="Did you mean 'blur'"):
        registry.load_class("method", "blurr")


def test_split_spec_keeps_paths_with_colons_intact():
    assert registry.split_spec("onnx:/m/a:b.onnx") == ("onnx", "/m/a:b.onnx")
    assert registry.split_spec("r50") == ("r50", None)


def test_argument_rules():
    with pytest.raises(UnknownNameError, match="onnx:PATH"):
        registry.create("backbone", "onnx")
    with pytest.raises(UnknownNameError, match="takes no argument"):
        registry.create("backbone", "r50:x")


def test_broken_plugin_is_reported_not_dropped(tmp_path, monkeypatch):
    site = _fake_distribution(
        tmp_path, "broken_fiqa_plugin", "fiqa_bench.methods", {"broken-method": "no_such_module_for_fiqa:Thing"}
    )
    monkeypatch.syspath_prepend(str(site))
    assert "broken-method" in registry.entries("method")
    with pytest.raises(PluginLoadError, match="broken_fiqa_plugin.*failed to load: ModuleNotFoundError"):
        registry.load_class("method", "broken-method")
    assert ("method", "broken-method") in registry.failures()

    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-m", "fiqa_bench.cli.main", "list", "--kind", "method"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 1
    assert "FAILED to load method 'broken-method'" in out.stderr
    assert "blur" in out.stdout  # the healthy plugins are still listed


def test_list_shows_cards_without_heavy_imports():
    code = textwrap.dedent(
        """
        import json, sys
        from click.testing import CliRunner
        from fiqa_bench.cli.main import main
        res = CliRunner().invoke(main, ["list", "--json"])
        heavy = sorted(m for m in ("torch", "onnxruntime", "dlib", "tensorflow") if m in sys.modules)
        print(json.dumps({"code": res.exit_code, "out": res.output, "heavy": heavy}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["heavy"] == [], f"listing imported {res['heavy']}"
    payload = json.loads(res["out"])
    assert res["code"] == 0, res["out"]
    for name in ("dlib", "r50", "r100", "mbf", "onnx:PATH"):
        assert name in payload["backbone"], name
        labels = [row[0] for row in payload["backbone"][name]["card"]]
        assert {"input", "embedding", "licence", "weights"} <= set(labels)
    assert "lfw" in payload["protocol"]


def test_the_registry_is_read_once_and_again_only_when_the_import_path_changes(tmp_path, monkeypatch):
    """One cached registry: repeated look-ups scan no metadata and import nothing more; a distribution added on the
    import path is seen at once (the cache follows the path), and the same "module:attr" target of another
    distribution is imported anew, never served from the old one's cache."""
    registry.load_class("method", "blur")
    registry.load_class("backbone", "dlib")
    before = registry.lookups()
    for _ in range(3):
        registry.entries("method")
        registry.load_class("method", "blur")
        registry.load_class("backbone", "dlib")
    assert registry.lookups() == before

    site = tmp_path / "site"
    site.mkdir()
    (site / "cached_fiqa.py").write_text("class Thing:\n    VERSION = 1\n")
    _fake_distribution(site, "cached_fiqa", "fiqa_bench.methods", {"cached-thing": "cached_fiqa:Thing"})
    monkeypatch.syspath_prepend(str(site))
    assert registry.load_class("method", "cached-thing").VERSION == 1
    assert registry.lookups()["scans"] == before["scans"] + 1

    other = tmp_path / "other"
    other.mkdir()
    (other / "cached_fiqa.py").write_text("class Thing:\n    VERSION = 2\n")
    _fake_distribution(other, "cached_fiqa", "fiqa_bench.methods", {"cached-thing": "cached_fiqa:Thing"})
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(site)])
    monkeypatch.delitem(sys.modules, "cached_fiqa")
    monkeypatch.syspath_prepend(str(other))
    assert registry.load_class("method", "cached-thing").VERSION == 2


def test_a_distribution_installed_or_removed_later_is_seen(tmp_path, monkeypatch):
    """Entry points are read once and again only when sys.path or one of its folders changed: a plugin installed
    into (or removed from) a folder already on sys.path, within the same process, is seen at once."""
    import shutil

    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    assert "later-method" not in registry.entries("method")
    _fake_distribution(site, "later_fiqa_plugin", "fiqa_bench.methods", {"later-method": "later_mod:Thing"})
    entry = registry.entries("method")["later-method"]
    assert entry.target == "later_mod:Thing" and entry.distribution == "later_fiqa_plugin"
    shutil.rmtree(site / "later_fiqa_plugin-0.1.dist-info")
    assert "later-method" not in registry.entries("method")
    assert "blur" in registry.entries("method")


@pytest.mark.shared
def test_nothing_is_looked_up_in_the_registry_after_resolution(small_bench, mbf, tmp_path, isolated_cache, monkeypatch):
    """The runner resolves names to objects once, before the evaluation; the evaluation itself (stages, pair scores,
    metrics, bootstrap) takes objects and never goes back to the registry: counted by wrapping the registry's
    look-ups while ``evaluate`` runs, on a real run."""
    from fiqa_bench.pipeline import evaluation, runner

    calls: list[tuple[str, tuple]] = []
    inside = [False]

    def counting(name, original):
        def wrapper(*args, **kwargs):
            if inside[0]:
                calls.append((name, args))
            return original(*args, **kwargs)

        return wrapper

    for name in ("entries", "load_class", "create", "names"):
        monkeypatch.setattr(registry, name, counting(name, getattr(registry, name)))
    original_evaluate = evaluation.evaluate

    def evaluate(*args, **kwargs):
        inside[0] = True
        try:
            return original_evaluate(*args, **kwargs)
        finally:
            inside[0] = False

    monkeypatch.setattr(runner, "evaluate", evaluate)
    cfg = runner.RunConfig(
        protocol=str(small_bench), backbone=mbf, method="blur", out=str(tmp_path / "out"), progress=False, bootstrap=20
    )
    before = registry.lookups()
    _, record = runner.run(cfg)
    assert record["metrics"]["tpr_at_fpr"]["values"]  # the evaluation ran, with its metrics and bootstrap
    assert calls == [], f"registry look-ups during the evaluation: {calls}"
    # and the resolution itself read the entry points at most once (nothing new was installed meanwhile)
    assert registry.lookups()["scans"] <= before["scans"] + 1
