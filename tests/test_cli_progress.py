"""No silent minute (issue 22): ``run`` shows the bootstrap's progress on stderr and its time in the summary and the
results file, a rerun with nothing changed reuses the stored replicates and writes the same results file (timings
aside), and ``rescore`` shows per-file progress and times while never reading the replicate store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fiqa_bench.pipeline.replicate_store import ReplicateStore

B = "300"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fiqa_bench", *args], capture_output=True, text=True)


def run_args(bench: Path, mbf: str, out: Path) -> list[str]:
    return ["run", "--method", "blur", "--fr", mbf, "--protocol", str(bench), "--out", str(out), "--bootstrap", B]


def only_file(out: Path) -> Path:
    (path,) = [p for p in out.glob("*.json")]
    return path


def without_timings(record: dict) -> dict:
    """The record without its timings and without the counts of work this run did itself (``*_new``: on a rerun
    everything comes from the caches)."""
    out = {k: v for k, v in record.items() if k != "timings"}
    out["counts"] = {k: v for k, v in record["counts"].items() if not k.endswith("_new")}
    return out


@pytest.mark.shared
def test_run_shows_the_bootstrap_and_its_time_and_a_rerun_reuses_it(small_bench, mbf, tmp_path, isolated_cache):
    out = tmp_path / "out"
    first = cli(*run_args(small_bench, mbf, out))
    assert first.returncode == 0, first.stderr
    assert "bootstrap:" in first.stderr and f"/{B} [" in first.stderr and "resample/s" in first.stderr
    summary = [line for line in first.stdout.splitlines() if line.strip().startswith("time:")]
    assert len(summary) == 1 and "bootstrap " in summary[0] and "(computed)" in summary[0], first.stdout
    path = only_file(out)
    record = json.loads(path.read_text())
    timings = record["timings"]
    assert timings["bootstrap_reused"] is False and isinstance(timings["bootstrap_s"], float)
    assert timings["bootstrap_s"] <= timings["total_s"]
    assert f"bootstrap {timings['bootstrap_s']:.1f} s" in summary[0]
    raw = path.with_suffix(".npz").read_bytes()
    (entry,) = list((isolated_cache / "bootstrap").glob("*.npz"))

    again = cli(*run_args(small_bench, mbf, out))
    assert again.returncode == 0, again.stderr
    assert "bootstrap:" not in again.stderr  # nothing resampled: no bar
    assert "(replicates reused from the cache)" in again.stdout
    second = json.loads(path.read_text())
    assert second["timings"]["bootstrap_reused"] is True
    assert without_timings(second) == without_timings(record)  # the same results file, timings aside
    assert second["counts"]["images_scored_new"] == second["counts"]["images_embedded_new"] == 0
    assert path.with_suffix(".npz").read_bytes() == raw
    assert list((isolated_cache / "bootstrap").glob("*.npz")) == [entry]
    # the values and intervals printed are the same (the counts line says how many images were new)
    assert [line for line in again.stdout.splitlines() if "time:" not in line and " new)" not in line] == [
        line for line in first.stdout.splitlines() if "time:" not in line and " new)" not in line
    ]


@pytest.mark.shared
@pytest.mark.parametrize("hide", [["--no-progress"], ["-q"]])
def test_no_progress_and_quiet_hide_every_bar(small_bench, mbf, tmp_path, isolated_cache, hide):
    args = run_args(small_bench, mbf, tmp_path / "out")
    res = cli(*hide, *args) if hide == ["-q"] else cli(*args, *hide)
    assert res.returncode == 0, res.stderr
    assert "bootstrap" not in res.stderr and "quality:" not in res.stderr and "\r" not in res.stderr
    assert "(computed)" in res.stdout  # the bootstrap ran, silently as asked; its time is in the summary


@pytest.mark.shared
def test_rescore_shows_progress_and_time_and_never_reads_the_store(small_bench, mbf, tmp_path, isolated_cache):
    out = tmp_path / "out"
    assert cli(*run_args(small_bench, mbf, out), "--no-progress").returncode == 0
    path = only_file(out)
    store = ReplicateStore(isolated_cache / "bootstrap")
    (entry,) = list(store.root.glob("*.npz"))
    key = entry.stem
    with np.load(entry) as z:
        honest = {k[len("boot_") :]: z[k] for k in z.files if k.startswith("boot_")}

    res = cli("rescore", str(path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"[1/1] {path}: recomputing" in res.stderr and "bootstrap:" in res.stderr
    assert res.stdout.startswith(f"{path}: every metric agrees with its .npz (") and res.stdout.rstrip().endswith(" s)")
    quiet = cli("rescore", str(path), "--no-progress")
    assert quiet.returncode == 0 and quiet.stderr == "" and "agrees" in quiet.stdout

    # An entry under the run's key that a computation did not make (whole, with a valid checksum): rescore never
    # reads it, so it still agrees; a run trusts the store, and rescore is what catches such a run.
    store.save(key, {k: v * 0.5 for k, v in honest.items()})  # wrong, yet every value still in range
    res = cli("rescore", str(path), "--no-progress")
    assert res.returncode == 0, res.stdout
    rerun = cli(*run_args(small_bench, mbf, out), "--no-progress")
    assert rerun.returncode == 0 and "(replicates reused from the cache)" in rerun.stdout
    caught = cli("rescore", str(path), "--no-progress")
    assert caught.returncode == 1 and "DIFFERS" in caught.stdout and "intervals" in caught.stdout
    assert "raw boot_tpr_at_fpr: the stored bootstrap replicates differ" in caught.stdout

    # nor does rescore write to the store
    for p in store.root.glob("*.npz"):
        p.unlink()
    store.save(key, honest)
    assert cli(*run_args(small_bench, mbf, out), "--no-progress").returncode == 0  # the honest file again
    for p in store.root.glob("*.npz"):
        p.unlink()
    two = cli("rescore", str(path), str(path), "--no-progress")
    assert two.returncode == 0 and "2 files rescored in" in two.stdout
    assert not list(store.root.glob("*.npz"))
