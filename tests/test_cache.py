"""Per-image caches: atomic shards, resume after interruption, stale keys never served."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fiqa_bench.data.cache import ArrayCache, image_key, safe_name


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
    from fiqa_bench.errors import FileAccessError

    with pytest.raises(FileAccessError, match="missing.jpg: cannot stat: No such file"):
        image_key(tmp_path, "missing.jpg")


def test_safe_name_is_distinct_for_distinct_identities():
    assert safe_name("a/b") != safe_name("a_b")
    assert os.sep not in safe_name("x/y/z")


# ------------------------------------------------------------------------------------------ integrity (issue 11)
def _shard(folder):
    (path,) = sorted(folder.glob("shard-*.npz"))
    return path


def _resave(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        parts = {k: z[k] for k in z.files}
    parts.update(changes)
    with open(path, "wb") as fh:
        np.savez(fh, **parts)


def test_shard_with_changed_values_is_rejected_and_counted(tmp_path):
    c = ArrayCache(tmp_path / "c", width=2, producer="quality|m|d")
    c.put_many(["a", "b"], np.array([[1.0, 2.0], [3.0, 4.0]]))
    c.flush()
    shard = _shard(tmp_path / "c")
    assert ArrayCache(tmp_path / "c", width=2, producer="quality|m|d").rejected_shards == 0
    with np.load(shard) as z:
        _resave(shard, values=z["values"][::-1].copy())  # same keys and checksum, wrong values
    again = ArrayCache(tmp_path / "c", width=2, producer="quality|m|d")
    assert len(again) == 0 and again.rejected_shards == 1
    assert "checksum" in again.rejected_reasons[shard.name]
    assert not shard.exists() and (tmp_path / "c" / f"rejected-{shard.name}").exists()
    assert ArrayCache(tmp_path / "c", width=2, producer="quality|m|d").rejected_shards == 0  # counted once


def test_shard_of_another_producer_is_rejected(tmp_path):
    c = ArrayCache(tmp_path / "c", width=1, producer="quality|one|d")
    c.put_many(["a"], [[0.5]])
    c.flush()
    other = ArrayCache(tmp_path / "c", width=1, producer="quality|two|d")
    assert len(other) == 0 and other.rejected_shards == 1 and "producer" in next(iter(other.rejected_reasons.values()))


def test_nan_values_rejected_even_with_a_valid_checksum(tmp_path):
    import json

    from fiqa_bench.data.cache import shard_checksum

    c = ArrayCache(tmp_path / "c", width=2, producer="p")
    c.put_many(["a", "b"], np.ones((2, 2)))
    c.flush()
    shard = _shard(tmp_path / "c")
    with np.load(shard) as z:
        keys, vals, meta = z["keys"], z["values"].copy(), json.loads(str(z["meta"]))
    vals[1, 0] = np.inf
    meta["sha256"] = shard_checksum("p", 2, keys, vals)
    _resave(shard, values=vals, meta=np.array(json.dumps(meta)))
    again = ArrayCache(tmp_path / "c", width=2, producer="p")
    assert len(again) == 0 and again.rejected_shards == 1 and "NaN/inf" in again.rejected_reasons[shard.name]


def test_detections_may_store_no_face_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("FIQA_BENCH_CACHE", str(tmp_path))
    c = ArrayCache.for_producer("detections", "yunet", "bench", 3)
    c.put_many(["noface", "face"], np.array([[np.nan] * 3, [1.0, 2.0, 3.0]]))
    c.flush()
    again = ArrayCache.for_producer("detections", "yunet", "bench", 3)
    assert again.rejected_shards == 0 and np.isnan(again.get("noface")).all()
    q = ArrayCache.for_producer("quality", "m", "bench", 1)  # a NaN quality score is damage, not a value
    q.put_many(["x"], [[np.nan]])
    q.flush()
    assert ArrayCache.for_producer("quality", "m", "bench", 1).rejected_shards == 1


def test_old_shards_without_checksum_are_recomputed(tmp_path):
    (tmp_path / "c").mkdir()
    with open(tmp_path / "c" / "shard-00000000000000000001-1.npz", "wb") as fh:
        np.savez(fh, keys=np.array(["a"]), values=np.ones((1, 1), np.float32))
    c = ArrayCache(tmp_path / "c", width=1)
    assert len(c) == 0 and c.rejected_shards == 1


def test_flush_every_256_values_or_5_seconds(tmp_path, monkeypatch):
    import fiqa_bench.data.cache as cache_mod
    from fiqa_bench.data.cache import FLUSH_EVERY, FLUSH_SECONDS

    assert (FLUSH_EVERY, FLUSH_SECONDS) == (256, 5.0)
    clock = [1000.0]
    monkeypatch.setattr(cache_mod.time, "monotonic", lambda: clock[0])
    c = ArrayCache(tmp_path / "c", width=1)
    c.put_many([f"k{i}" for i in range(255)], np.zeros((255, 1)))
    assert len(ArrayCache(tmp_path / "c", width=1)) == 0  # 255 values, no time passed: still pending
    c.put_many(["k255"], np.zeros((1, 1)))  # the 256th value: written
    assert len(ArrayCache(tmp_path / "c", width=1)) == 256
    c.put_many(["slow"], np.zeros((1, 1)))
    clock[0] += 4.9
    c.put_many(["slow2"], np.zeros((1, 1)))
    assert len(ArrayCache(tmp_path / "c", width=1)) == 256  # 4.9 s: not yet
    clock[0] += 0.1
    c.put_many(["slow3"], np.zeros((1, 1)))  # 5 s after the last write: written, with only 3 values
    assert len(ArrayCache(tmp_path / "c", width=1)) == 259


def test_consolidate_leaves_one_shard_per_run(tmp_path):
    c = ArrayCache(tmp_path / "c", width=1, flush_every=2)
    for i in range(7):
        c.put_many([f"k{i}"], [[float(i)]])
    assert len(list((tmp_path / "c").glob("shard-*.npz"))) == 3
    c.consolidate()
    assert len(list((tmp_path / "c").glob("shard-*.npz"))) == 1
    again = ArrayCache(tmp_path / "c", width=1)
    assert len(again) == 7 and again.get("k6")[0] == 6.0 and again.rejected_shards == 0


def test_unwritable_cache_is_one_line_naming_the_folder(tmp_path):
    from fiqa_bench.errors import FileAccessError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    c = ArrayCache(blocker / "c", width=1)
    c.put_many(["a"], [[1.0]])
    with pytest.raises(FileAccessError, match=rf"{blocker}.*FIQA_BENCH_CACHE|{blocker}.*not a folder"):
        c.flush()


def test_a_unit_of_work_sent_again_finds_what_its_lost_attempt_wrote(tmp_path):
    """Shards written through a tagged view carry the tag; a cache that tracks the run keeps their keys by tag,
    and a view of the same tag collects its hits on them (what a worker that died had flushed), a view of another
    unit of the run, or a cache of another run, does not."""
    keys = [f"k{i}" for i in range(6)]
    vals = np.arange(6, dtype=np.float32)[:, None]
    lost = ArrayCache(tmp_path, 1, producer="p", track_run="run1").view("run1/1/0")
    lost.put_many(keys[:4], vals[:4])
    lost.flush()  # flushed, then the worker died before returning the shard
    other = ArrayCache(tmp_path, 1, producer="p", track_run="run1").view("run1/1/8")
    other.put_many(keys[4:], vals[4:])
    other.consolidate()
    again = ArrayCache(tmp_path, 1, producer="p", track_run="run1")
    assert again.work_keys == {"run1/1/0": set(keys[:4]), "run1/1/8": set(keys[4:])}
    retry = again.view("run1/1/0")
    found, got = retry.get_many(keys[2:6])
    assert found.all() and np.array_equal(got, vals[2:6])
    assert retry.reused == {"k2", "k3"}  # its own lost attempt's, not unit 8's
    later = ArrayCache(tmp_path, 1, producer="p", track_run="run2")  # a later run: earlier runs' tags not kept
    assert later.work_keys == {}
    view = later.view("run2/1/0")
    view.get_many(keys)
    assert view.reused == set()
    assert ArrayCache(tmp_path, 1, producer="p").work_keys == {}  # untracked (the in-process path): nothing kept
