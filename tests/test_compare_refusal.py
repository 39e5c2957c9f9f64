"""``compare`` refuses to pair runs that share protocol name, pair list, backbone, selection and settings but did
not resample the same thing: their subjects differ (another subject file), or their scored pairs differ (images
skipped in one of them). A paired bootstrap over subjects is only meaningful when both runs resample identical
subjects over identical pairs; otherwise the refusal names the two files and what differs."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main
from fiqa_bench.config import RunConfig
from fiqa_bench.pipeline.runner import run
from fiqa_bench.results.record import read_raw


def _run(bench, mbf, out, method, **kw):
    return run(
        RunConfig(protocol=str(bench), backbone=mbf, method=method, bootstrap=20, out=str(out), progress=False, **kw)
    )


def _compare(*dirs) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["compare", *map(str, dirs)])
    return res.exit_code, res.output + (str(res.exception) if res.exception else "")


@pytest.mark.shared
def test_runs_whose_subjects_differ_are_not_paired(small_bench, mbf, tmp_path, isolated_cache):
    other = tmp_path / "bench" / small_bench.name
    shutil.copytree(small_bench, other)
    # the same images, templates and pair list; template 2 now belongs to a subject of its own
    sid = other / "meta" / f"{small_bench.name}_tid_sid.txt"
    rows = [line.split() for line in sid.read_text().splitlines()]
    assert rows[1][0] == "2" and rows[1][1] == rows[0][1]
    rows[1][1] = "99"
    sid.write_text("".join(f"{t} {s}\n" for t, s in rows))
    a, _ = _run(small_bench, mbf, tmp_path / "one", "blur")
    b, _ = _run(other, mbf, tmp_path / "two", "jpeg")
    ra, rb = read_raw(a), read_raw(b)
    # what makes them look comparable: one protocol, one pair list, one settings group
    ja, jb = (json.loads(p.read_text()) for p in (a, b))
    assert ja["protocol"]["name"] == jb["protocol"]["name"]
    assert ja["protocol"]["pairs_sha256"] == jb["protocol"]["pairs_sha256"]
    assert ra["pair_a"].tolist() == rb["pair_a"].tolist() and ra["pair_b"].tolist() == rb["pair_b"].tolist()
    assert ra["template_subject"].tolist() != rb["template_subject"].tolist()
    code, text = _compare(tmp_path / "one", tmp_path / "two")
    assert code != 0
    assert "cannot pair runs" in text and "template_subject differs" in text
    assert a.name in text and b.name in text
    # each folder alone compares
    assert _compare(tmp_path / "one")[0] == 0 and _compare(tmp_path / "two")[0] == 0


@pytest.mark.shared
def test_runs_whose_scored_pairs_differ_are_not_paired(small_bench, mbf, tmp_path, isolated_cache):
    other = tmp_path / "bench" / small_bench.name
    shutil.copytree(small_bench, other)
    # every image of template 1 unreadable: with --on-bad-image skip its pairs are dropped in that run only
    faces = (other / "meta" / f"{small_bench.name}_face_tid_mid.txt").read_text().splitlines()
    for line in faces:
        name, tid, _ = line.split()
        if tid == "1":
            f = other / "loose_crop" / name
            f.write_bytes(f.read_bytes()[:200])
    a, ja = _run(small_bench, mbf, tmp_path / "one", "blur", on_bad_image="skip")
    b, jb = _run(other, mbf, tmp_path / "two", "jpeg", on_bad_image="skip")
    assert ja["counts"]["pairs_dropped"] == 0 and jb["counts"]["pairs_dropped"] == 11
    code, text = _compare(tmp_path / "one", tmp_path / "two")
    assert code != 0
    assert "cannot pair runs" in text and "pair_a differs" in text
