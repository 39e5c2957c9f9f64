"""An outside adapter package (tests/plugin_example) installed with pip is found, created and conforms.

The package is copied to a temporary folder (building in place would leave build/ and *.egg-info in the source
tree), installed into the running interpreter's environment without dependencies or build isolation, and
uninstalled at the end of the module even if a test fails.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fiqa_bench import registry
from fiqa_bench.testing import check_method, synthetic_inputs

SOURCE = Path(__file__).parent / "plugin_example"
DIST = "fiqa-bench-example-adapter"
MODULE = "fiqa_example_adapter"
NAME = "example-contrast"


def _pip(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def _installed() -> bool:
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _forget_module() -> None:
    for name in [m for m in sys.modules if m == MODULE or m.startswith(MODULE + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _can_build_without_isolation() -> bool:
    """setuptools builds wheels by itself from 70.1 on; before that it needs the ``wheel`` package."""
    try:
        import wheel  # noqa: F401

        return True
    except ImportError:
        pass
    import setuptools

    major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1)


@pytest.fixture(scope="module")
def example_package(tmp_path_factory) -> Path:
    """The example adapter, pip-installed for the duration of this module; yields the copy it was built from."""
    if not _can_build_without_isolation():
        pytest.fail(
            "building the example adapter without build isolation needs the 'wheel' package "
            "(pip install wheel) or setuptools>=70.1 in this environment"
        )
    if _installed():  # left over from an interrupted run
        _pip("uninstall", "-y", DIST)
    _forget_module()
    assert NAME not in registry.entries("method"), f"{NAME} is registered before the example is installed"
    copy = tmp_path_factory.mktemp("plugin") / DIST
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("conftest.py", "build", "*.egg-info", "__pycache__"))
    _pip("install", "--no-deps", "--no-build-isolation", "--quiet", str(copy))
    importlib.invalidate_caches()
    try:
        yield copy
    finally:
        _pip("uninstall", "-y", "--quiet", DIST)
        _forget_module()
        assert NAME not in registry.entries("method"), f"{NAME} is still registered after uninstalling"


def test_registry_lists_the_installed_method(example_package):
    entry = registry.entries("method")[NAME]
    assert entry.target == "fiqa_example_adapter.contrast:ContrastQuality"
    assert entry.distribution == DIST


def test_registry_creates_it_from_the_installed_copy(example_package):
    method = registry.create("method", NAME)
    module = sys.modules[type(method).__module__]
    site = Path(importlib.metadata.distribution(DIST).locate_file("")).resolve()
    assert Path(module.__file__).resolve().is_relative_to(site)
    assert not Path(module.__file__).resolve().is_relative_to(SOURCE.resolve())
    assert method.card.name == NAME and method.card.input.kind == "aligned"
    crops = synthetic_inputs(method.card.input, n=5)
    luma = crops[:, 24:104, 24:88].astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    np.testing.assert_allclose(method.score(crops), luma.reshape(5, -1).std(axis=1), rtol=1e-5)


def test_installed_method_passes_the_kit(example_package):
    check_method(registry.create("method", NAME))


def test_the_packages_own_tests_pass_against_the_installed_copy(example_package, tmp_path):
    """What the example's author runs (``pytest tests``), from outside its tree so the source is not importable."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(example_package),
            str(example_package / "tests"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_installed_adapter_runs_through_the_cli(example_package, small_bench, mbf, tmp_path):
    """The outside adapter, found by its entry point, drives a whole `fiqa-bench run` without editing the suite."""
    import json

    env = {**os.environ, "FIQA_BENCH_CACHE": str(tmp_path / "cache"), "OPENCV_LOG_LEVEL": "ERROR"}
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fiqa_bench.cli.main",
            "run",
            "--method",
            NAME,
            "--fr",
            mbf,
            "--protocol",
            str(small_bench),
            "--out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (result,) = out.glob(f"*__{NAME}__*.json")
    record = json.loads(result.read_text())
    assert record["method"]["name"] == NAME
    assert record["counts"]["images_embedded"] == record["counts"]["templates"]
    assert NAME in (out / "report.md").read_text()
