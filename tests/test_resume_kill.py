"""Issue 11: ``kill -9`` at several points of a 2,600-image run (real celeba-wild faces), then resume.

A killed run keeps every image finished before its last persistence point (finished work reaches the disk at
least every 256 images or 5 s), and the run that finally completes gives byte-identical metrics and pair scores
to one that was never interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from fiqa_bench.data.cache import FLUSH_EVERY, ArrayCache

pytestmark = [pytest.mark.shared, pytest.mark.slow]

N_IDS, PER_ID = 130, 20  # 2,600 images
BATCH = 32

PACED_METHOD = """
import os, time
from fiqa_bench.methods.blur import BlurQuality
from fiqa_bench.api.cards import MethodCard


class PacedBlur(BlurQuality):
    '''The built-in blur score, logging how many images it has scored (and slowed a little) so a test can kill
    the run at a chosen point.'''

    card = MethodCard(name="paced-blur", version="1", summary="blur, paced and logged (tests)", licence="MIT",
                      input=BlurQuality.card.input)
    done = 0

    def score(self, images):
        out = super().score(images)
        PacedBlur.done += len(out)
        with open(os.environ["PACED_LOG"], "a") as fh:
            fh.write(f"{PacedBlur.done}\\n")
        time.sleep(float(os.environ.get("PACED_SLEEP", "0")))
        return out
"""


@pytest.fixture(scope="module")
def big_bench(tmp_path_factory, copy_identities) -> Path:
    from fiqa_bench.data.prepare import prepare_benchmark

    src = copy_identities(tmp_path_factory.mktemp("src-2600"), N_IDS, PER_ID)
    out = tmp_path_factory.mktemp("bench") / "big"
    # 4 templates per identity: 520 kept images, so the embedding stage outlives its first 256-image flush
    prepare_benchmark(src, out, name="big", seed=0, layout="ijb", templates_per_identity=4, progress=False)
    return out


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    (site / "paced_fiqa.py").write_text(textwrap.dedent(PACED_METHOD))
    info = site / "paced_fiqa-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: paced-fiqa\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fiqa_bench.methods]\npaced-blur = paced_fiqa:PacedBlur\n")
    return site


class Run:
    """One ``fiqa-bench run`` in a subprocess, with its own cache, log and results folder."""

    def __init__(self, bench: Path, mbf: str, site: Path, cache: Path, out: Path, log: Path, sleep: float):
        self.cmd = [
            sys.executable,
            "-m",
            "fiqa_bench.cli.main",
            "run",
            "--protocol",
            str(bench),
            "--fr",
            mbf,
            "--method",
            "paced-blur",
            "--batch-size",
            str(BATCH),
            "--no-progress",
            "--out",
            str(out),
        ]
        self.env = {
            **os.environ,
            "FIQA_BENCH_CACHE": str(cache),
            "PACED_LOG": str(log),
            "PACED_SLEEP": str(sleep),
            "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        }
        self.log, self.cache, self.out = log, cache, out

    def logged(self) -> int:
        try:
            lines = self.log.read_text().split()
        except FileNotFoundError:
            return 0
        return int(lines[-1]) if lines else 0

    def complete(self) -> dict:
        self.log.unlink(missing_ok=True)
        proc = subprocess.run(self.cmd, env=self.env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        return _record(self.out)

    def kill_when(self, ready, timeout: float = 600) -> int:
        """Start, SIGKILL as soon as ``ready(self)``; returns the images logged as scored at the kill."""
        self.log.unlink(missing_ok=True)
        proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        try:
            while not ready(self):
                assert proc.poll() is None, f"run ended before the kill point: {proc.stderr.read().decode()}"
                assert time.monotonic() - t0 < timeout, "kill point never reached"
                time.sleep(0.01)
            logged = self.logged()
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        return logged

    def persisted(self, kind: str) -> int:
        """Values of ``kind`` on disk now, as a new run would load them."""
        shards = sorted((self.cache / kind).rglob("shard-*.npz")) if (self.cache / kind).is_dir() else []
        folders = {p.parent for p in shards}
        assert len(folders) <= 1, folders
        if not shards:
            return 0
        with np.load(shards[0], allow_pickle=False) as z:
            width, producer = z["values"].shape[1], json.loads(str(z["meta"]))["producer"]
        cache = ArrayCache(folders.pop(), width, producer=producer)
        assert cache.rejected_shards == 0  # a kill never leaves a damaged shard (atomic writes)
        return len(cache)


def _record(out: Path) -> dict:
    (path,) = [p for p in out.glob("*.json")]
    return json.loads(path.read_text())


def _pair_scores(out: Path) -> bytes:
    (path,) = [p for p in out.glob("*.npz")]
    with np.load(path, allow_pickle=False) as z:
        return np.ascontiguousarray(z["pair_scores"]).tobytes()


def test_kill_nine_at_several_points_then_resume(big_bench, mbf, plugin_site, tmp_path):
    reference = Run(big_bench, mbf, plugin_site, tmp_path / "cache-ref", tmp_path / "out-ref", tmp_path / "ref.log", 0)
    ref = reference.complete()
    assert ref["counts"]["images"] == N_IDS * PER_ID and ref["counts"]["images_scored_new"] == N_IDS * PER_ID

    run = Run(big_bench, mbf, plugin_site, tmp_path / "cache", tmp_path / "out", tmp_path / "run.log", 0.02)
    total = N_IDS * PER_ID

    # 1. at 10% of the scoring stage: at least every image finished before the last 256-image flush survives
    logged = run.kill_when(lambda r: r.logged() >= total // 10)
    kept = run.persisted("quality")
    put = logged - BATCH  # the batch being scored at the kill had not been handed to the cache yet
    assert kept >= (put // FLUSH_EVERY) * FLUSH_EVERY >= FLUSH_EVERY, (logged, kept)
    assert kept <= logged

    # 2. again, half-way through what is left: the resumed run scores only what was not kept
    left = total - kept
    logged2 = run.kill_when(lambda r: r.logged() >= left // 2)
    kept2 = run.persisted("quality")
    assert kept2 >= kept + ((logged2 - BATCH) // FLUSH_EVERY) * FLUSH_EVERY

    # 3. during the embedding stage, once its first shard is on disk
    run.kill_when(lambda r: (r.cache / "embeddings").is_dir() and any((r.cache / "embeddings").rglob("shard-*.npz")))
    kept3 = run.persisted("quality")
    assert kept3 == total  # the scoring stage had finished and was consolidated
    embedded = run.persisted("embeddings")
    assert 0 < embedded < ref["counts"]["images_embedded"]

    final = run.complete()
    assert final["counts"]["images_scored_new"] == 0
    assert final["counts"]["images_embedded_new"] == ref["counts"]["images_embedded"] - embedded
    assert json.dumps(final["metrics"], sort_keys=True) == json.dumps(ref["metrics"], sort_keys=True)
    assert _pair_scores(run.out) == _pair_scores(reference.out)
