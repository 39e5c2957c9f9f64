"""Per-image caches: atomic shards, resume after interruption, stale keys never served."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fiqa_bench.cache import ArrayCache, image_key, safe_name


def test_roundtrip_and_resume(tmp_path):
    c = ArrayCache(tmp_path / "c", width=3, flush_every=2)
    c.put_many(["a", "b"], np.arange(6).reshape(2, 3))  # flushed (2 >= flush_every)
    c.put_many(["c"], np.ones((1, 3)))  # pending, not flushed: lost on a crash
    reopened = ArrayCache(tmp_path / "c", width=3)
    found, vals = reopened.get_many(["a", "b", "c"])
    assert found.tolist() == [True, True, False]
    np.testing.assert_array_equal(vals[:2], np.arange(6).reshape(2, 3))
    assert np.isnan(vals[2]).all()
    c.flush()
    assert ArrayCache(tmp_path / "c", width=3).get_many(["c"])[0].all()


def test_no_temporary_files_left_and_corrupt_shard_ignored(tmp_path):
    c = ArrayCache(tmp_path / "c", width=2)
    c.put_many(["x"], np.zeros((1, 2)))
    c.flush()
    assert [p.name for p in (tmp_path / "c").iterdir() if p.name.startswith(".")] == []
    (tmp_path / "c" / "shard-99999999999999999999-1.npz").write_bytes(b"not a zip")
    again = ArrayCache(tmp_path / "c", width=2)
    assert "x" in again and len(again) == 1


def test_width_mismatch_is_not_served(tmp_path):
    c = ArrayCache(tmp_path / "c", width=2)
    c.put_many(["x"], np.zeros((1, 2)))
    c.flush()
    assert len(ArrayCache(tmp_path / "c", width=5)) == 0


def test_compact_merges_shards(tmp_path):
    c = ArrayCache(tmp_path / "c", width=1, flush_every=1)
    c.put_many(["a"], [[1.0]])
    c.put_many(["b"], [[2.0]])
    assert len(list((tmp_path / "c").glob("shard-*.npz"))) == 2
    c.compact()
    assert len(list((tmp_path / "c").glob("shard-*.npz"))) == 1
    assert ArrayCache(tmp_path / "c", width=1).get("b")[0] == 2.0


def test_image_key_changes_with_content_and_crop(tmp_path):
    f = tmp_path / "img.jpg"
    f.write_bytes(b"abc")
    k1 = image_key(tmp_path, "img.jpg")
    assert image_key(tmp_path, "img.jpg", b"landmarks") != k1
    f.write_bytes(b"abcd")
    assert image_key(tmp_path, "img.jpg") != k1
    with pytest.raises(FileNotFoundError):
        image_key(tmp_path, "missing.jpg")


def test_safe_name_is_distinct_for_distinct_identities():
    assert safe_name("a/b") != safe_name("a_b")
    assert os.sep not in safe_name("x/y/z")
