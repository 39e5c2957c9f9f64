"""Shared fixtures. Tests that need the real data/models under ../shared skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _find_shared() -> Path | None:
    env = os.environ.get("FIQA_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared")
    for c in candidates:
        if (c / "data").is_dir() and (c / "models").is_dir():
            return c
    return None


SHARED = _find_shared()


@pytest.fixture(scope="session")
def shared() -> Path:
    """Root of the read-only development data (``FIQA_SHARED``, default ``../shared``)."""
    if SHARED is None:
        pytest.skip("real data not present: set FIQA_SHARED to the shared/ folder (data + models)")
    os.environ.setdefault("FIQA_SHARED", str(SHARED))
    return SHARED


@pytest.fixture()
def isolated_cache(tmp_path, monkeypatch) -> Path:
    """A fresh user cache folder so tests never touch ~/.cache."""
    d = tmp_path / "cache"
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(d))
    return d


def _copy_identities(shared: Path, dest: Path, n_ids: int, per_id: int) -> Path:
    """The first ``n_ids`` celeba-wild identities with at least ``per_id`` photos, ``per_id`` photos each."""
    import shutil

    root = shared / "data/celeba-wild/images"
    ids = [p.name for p in sorted(root.iterdir()) if len(list(p.glob("*.jpg"))) >= per_id][:n_ids]
    for ident in ids:
        (dest / ident).mkdir(parents=True)
        for photo in sorted((root / ident).glob("*.jpg"))[:per_id]:
            shutil.copy(photo, dest / ident / photo.name)
    return dest


@pytest.fixture(scope="session")
def small_bench(tmp_path_factory, shared) -> Path:
    """IJB layout: 6 celeba-wild identities x 8 photos, 2 templates each, 30% of each template degraded."""
    from fiqa_bench.data.prepare import prepare_benchmark

    src = _copy_identities(shared, tmp_path_factory.mktemp("src"), 6, 8)
    out = tmp_path_factory.mktemp("bench") / "mini"
    prepare_benchmark(src, out, name="mini", seed=0, layout="ijb", degrade_fraction=0.3, progress=False)
    return out


@pytest.fixture(scope="session")
def small_ytf(tmp_path_factory, shared) -> Path:
    """YTF layout: 20 identities x 6 photos as 2 'videos' each, 10 identity-disjoint folds."""
    from fiqa_bench.data.prepare import prepare_benchmark

    src = _copy_identities(shared, tmp_path_factory.mktemp("src-ytf"), 20, 6)
    out = tmp_path_factory.mktemp("bench") / "mini-ytf"
    prepare_benchmark(src, out, name="miniytf", seed=0, layout="ytf", degrade_fraction=0.3, progress=False)
    return out


@pytest.fixture()
def mbf(shared) -> str:
    """The shared MobileFaceNet through the generic ONNX backbone."""
    return f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}"


@pytest.fixture(scope="session")
def copy_identities(shared):
    """``copy(dest, n_ids, per_id)``: copy real celeba-wild identity folders into ``dest`` for a test."""
    return lambda dest, n_ids, per_id: _copy_identities(shared, dest, n_ids, per_id)


@pytest.fixture(scope="session")
def baseline_set(tmp_path_factory, copy_identities, shared):
    """4 real celeba-wild identities x 3 photos -> `train-baseline data` (each photo + its 3-step ladder):
    (the set's folder, the labelling backbone's spec)."""
    from click.testing import CliRunner

    from fiqa_bench.cli.main import main

    root = tmp_path_factory.mktemp("bl")
    src = copy_identities(root / "photos", 4, 3)
    mbf = shared / "models/mobilefacenet/mobilefacenet.onnx"
    args = ["train-baseline", "data", str(root / "set"), "--fr", f"onnx:{mbf}", "--fr-option"]
    args += ["normalisation=mobilefacenet", "--source", f"{src}:per_identity=3", "--part", "all", "--no-progress"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "48 rows (12 photos, 0 without a face) of 4 identities" in res.output
    return root / "set", f"onnx:{mbf}"
