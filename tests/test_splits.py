"""The train/eval identity split: stable, balanced, and honoured by prepare."""

from __future__ import annotations

import hashlib
import json

import pytest

from fiqa_bench.data.splits import identity_part, in_part


def test_part_is_the_documented_hash_bit():
    for name in ["7201", "George_W_Bush", "Zoe Saldana", "x"]:
        bit = hashlib.sha256(name.encode()).digest()[0] & 1
        assert identity_part(name) == ("eval" if bit else "train")


def test_split_is_roughly_balanced():
    parts = [identity_part(str(i)) for i in range(2000)]
    assert 0.45 < parts.count("eval") / len(parts) < 0.55


def test_in_part_rejects_unknown_part():
    assert in_part("a", "all")
    with pytest.raises(ValueError):
        in_part("a", "test")


def test_prepare_eval_part_keeps_only_eval_identities(tmp_path, copy_identities):
    from fiqa_bench.data.prepare import prepare_benchmark

    src = copy_identities(tmp_path / "src", 8, 4)
    out = tmp_path / "bench"
    summary = prepare_benchmark(src, out, name="evalpart", part="eval", progress=False)
    subjects = json.loads((out / "benchmark.json").read_text())["subjects"]
    kept = set(subjects.values()) if isinstance(subjects, dict) else set(subjects)
    assert kept and all(identity_part(s) == "eval" for s in kept)
    assert summary["counts"]["photos_in_other_split_part"] == 4 * (8 - len(kept))
