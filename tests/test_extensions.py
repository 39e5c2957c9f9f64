"""Proof by extension: what another package adds through the entry-point groups works like a built-in.

Each test installs a throwaway distribution the way pip leaves one (a module and a ``*.dist-info`` with its entry
points, on the import path) and uses it through the suite's ordinary commands, with nothing in fiqa-bench changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fiqa_bench.runner import RunConfig, run

EXECUTOR = """
from fiqa_bench.executors.local import LocalExecutor

CALLS = []


class CountingExecutor(LocalExecutor):
    '''The local executor, counting the rows each stage is asked for.'''

    name = "counting"

    def stage(self, stage, rows, skipped):
        CALLS.append((stage, len(rows)))
        return super().stage(stage, rows, skipped)
"""


def install(site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, dict[str, str]]) -> Path:
    """Write ``modules`` ({file name: source}) and a ``<dist>-0.1.dist-info`` declaring ``entry_points`` ({group:
    {name: "module:attr"}}) into ``site``, a folder for the import path."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / name).write_text(textwrap.dedent(source))
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


@pytest.fixture()
def plugin_site(tmp_path, monkeypatch):
    """A folder on the import path (this process and the commands it starts) for throwaway distributions."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    yield site
    for name in [m for m in sys.modules if m.startswith("ext_fiqa_")]:
        del sys.modules[name]


@pytest.mark.shared
def test_an_executor_from_another_package_runs_the_stages(plugin_site, small_bench, mbf, tmp_path, isolated_cache):
    install(plugin_site, "ext_fiqa_executor", {"ext_fiqa_executor.py": EXECUTOR},
            {"fiqa_bench.executors": {"counting": "ext_fiqa_executor:CountingExecutor"}})
    help_text = subprocess.run([sys.executable, "-m", "fiqa_bench", "run", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "counting" in " ".join(help_text.split())  # one of --executor's choices, like local and ray

    def config(executor: str, out: str) -> RunConfig:
        return RunConfig(protocol=str(small_bench), backbone=mbf, method="blur", out=str(tmp_path / out),
                         progress=False, bootstrap=0, executor=executor)

    _, local = run(config("local", "local"))
    import ext_fiqa_executor  # type: ignore[import-not-found]

    assert ext_fiqa_executor.CALLS == []
    _, counted = run(config("counting", "counting"))
    # the quality stage saw every image, the embed stage the kept ones: the run went through the plugin
    assert ext_fiqa_executor.CALLS == [("quality", local["counts"]["images"]),
                                       ("embed", local["counts"]["images_embedded"])]
    assert counted["metrics"] == local["metrics"]
    assert json.loads(json.dumps(counted["counts"]))["images"] == local["counts"]["images"]
