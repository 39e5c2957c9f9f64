"""The replicate store (fiqa_bench.pipeline.replicate_store): bootstrap replicates reused from it are bit-identical to
computing them, every input they depend on is in the key (changing any one computes them again), and a damaged
entry is recomputed, never served."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from fiqa_bench.metrics.base import MetricOptions, get_metric
from fiqa_bench.pipeline.replicate_store import ReplicateStore, bootstrap_reusing, code_version, replicate_key
from fiqa_bench.pipeline.uncertainty import BootstrapOptions, bootstrap
from test_uncertainty import synthetic

KEYS = ("tpr_at_fpr", "edc_fnm", "edc_fm", "edc_fnm_rethreshold", "accuracy")
OPTIONS = MetricOptions(fm_start=1e-2, rethreshold_fmr=1e-2)
BOOT = BootstrapOptions(B=40, seed=3)


def measured(data, options=OPTIONS):
    return {k: get_metric(k).measure(data, options) for k in KEYS}


def same_bits(a: dict, b: dict) -> bool:
    """Replicate matrices equal bit for bit (NaN where NaN), same keys, shapes and dtypes."""
    return sorted(a) == sorted(b) and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes() for k in a
    )


def test_reused_replicates_are_bit_identical_to_computed_ones(tmp_path):
    data = synthetic(2)
    metrics = measured(data)
    store = ReplicateStore(tmp_path / "store")
    first = bootstrap_reusing(data, metrics, OPTIONS, BOOT, store=store)
    again = bootstrap_reusing(data, metrics, OPTIONS, BOOT, store=store)
    plain_metrics, plain_reps = bootstrap(data, metrics, OPTIONS, BOOT)
    assert not first.reused and again.reused
    assert store.path(first.key).is_file() and again.key == first.key
    assert same_bits(first.replicates, plain_reps) and same_bits(again.replicates, plain_reps)
    assert set(again.replicates) == {"tpr_at_fpr", "edc_fnm", "edc_fm", "edc_fnm_rethreshold", "accuracy"}
    # the intervals (and everything else recorded) are the same JSON, NaN and None included
    as_json = [json.dumps(m, sort_keys=True) for m in (plain_metrics, first.metrics, again.metrics)]
    assert as_json[0] == as_json[1] == as_json[2]
    assert "intervals" in again.metrics["tpr_at_fpr"]


def test_another_level_reuses_the_replicates_and_gives_its_own_intervals(tmp_path):
    data = synthetic(2)
    metrics = measured(data)
    store = ReplicateStore(tmp_path)
    bootstrap_reusing(data, metrics, OPTIONS, BOOT, store=store)
    level = dataclasses.replace(BOOT, level=0.8)
    reused = bootstrap_reusing(data, metrics, OPTIONS, level, store=store)
    computed_metrics, _ = bootstrap(data, metrics, OPTIONS, level)
    assert reused.reused
    assert json.dumps(reused.metrics, sort_keys=True) == json.dumps(computed_metrics, sort_keys=True)
    assert reused.metrics["tpr_at_fpr"]["bootstrap"]["level"] == 0.8


def _one_score(data):
    scores = data.scores.copy()
    scores[7] = np.nextafter(scores[7], np.float32(2))  # the smallest change a float32 score can make
    return dataclasses.replace(data, scores=scores)


def _one_label(data):
    labels = data.labels.copy()
    labels[np.flatnonzero(labels == 0)[0]] = 1
    return dataclasses.replace(data, labels=labels)


def _one_quality(data):
    quality = data.quality.copy()
    quality[3] = quality[3] + 1e-9
    return dataclasses.replace(data, quality=quality)


def _one_subject(data):
    subject_b = data.subject_b.copy()
    subject_b[np.flatnonzero(data.labels == 0)[0]] = data.subject_b.max() + 1
    return dataclasses.replace(data, subject_b=subject_b)


def _one_fold(data):
    folds = data.folds.copy()
    folds[0] = (folds[0] + 1) % 5
    return dataclasses.replace(data, folds=folds)


def _quality_levels(data):
    _, codes = np.unique(data.quality, return_inverse=True)
    return dataclasses.replace(data, quality_codes=codes.reshape(-1))


CHANGES = {
    "one score": (_one_score, OPTIONS, BOOT),
    "one label": (_one_label, OPTIONS, BOOT),
    "one pair quality": (_one_quality, OPTIONS, BOOT),
    "one subject id": (_one_subject, OPTIONS, BOOT),
    "one fold": (_one_fold, OPTIONS, BOOT),
    "quality levels given": (_quality_levels, OPTIONS, BOOT),
    "the seed": (None, OPTIONS, BootstrapOptions(B=40, seed=4)),
    "B": (None, OPTIONS, BootstrapOptions(B=41, seed=3)),
    "the FPR reading": (None, OPTIONS.replace(fpr_reading="nearest"), BOOT),
    "the pair quality mode": (None, OPTIONS.replace(pair_quality="mean"), BOOT),
    "the FNM-EDC start": (None, OPTIONS.replace(fnm_start=0.1), BOOT),
    "the FM-EDC start": (None, OPTIONS.replace(fm_start=2e-2), BOOT),
    "the re-threshold FMR": (None, OPTIONS.replace(rethreshold_fmr=2e-2), BOOT),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_changing_any_input_computes_again(tmp_path, change):
    edit, options, boot = CHANGES[change]
    data = synthetic(2)
    store = ReplicateStore(tmp_path)
    first = bootstrap_reusing(data, measured(data), OPTIONS, BOOT, store=store)
    changed = edit(data) if edit is not None else data
    metrics = measured(changed, options)
    again = bootstrap_reusing(changed, metrics, options, boot, store=store)
    assert not again.reused and again.key != first.key
    _, plain = bootstrap(changed, metrics, options, boot)
    assert same_bits(again.replicates, plain)  # what the changed inputs give, not the stored entry
    assert len(list(tmp_path.glob("*.npz"))) == 2  # the first entry stays for its own inputs


def test_the_point_values_and_the_code_version_are_in_the_key():
    data = synthetic(2)
    metrics = measured(data)
    key = replicate_key(data, metrics, OPTIONS, BOOT)
    assert key == replicate_key(data, measured(data), OPTIONS, BOOT)  # a pure function of the inputs
    assert key == replicate_key(data, metrics, OPTIONS, BOOT, code=code_version())
    assert key != replicate_key(data, metrics, OPTIONS, BOOT, code="another version of the bootstrap code")
    fewer = {k: v for k, v in metrics.items() if k != "accuracy"}
    assert key != replicate_key(data, fewer, OPTIONS, BOOT)
    assert len(code_version()) == 64


@pytest.mark.parametrize("damage", ["flipped byte", "edited replicate", "other key", "truncated"])
def test_a_damaged_entry_is_recomputed_not_served(tmp_path, damage):
    data = synthetic(2)
    metrics = measured(data)
    store = ReplicateStore(tmp_path)
    first = bootstrap_reusing(data, metrics, OPTIONS, BOOT, store=store)
    path = store.path(first.key)
    blob = bytearray(path.read_bytes())
    if damage == "flipped byte":  # one bit of one replicate's stored float64 (the zip member's CRC broken too)
        at = bytes(blob).find(first.replicates["edc_fnm"].tobytes()[:64])
        assert at > 0
        blob[at + 13] ^= 0x40
        path.write_bytes(bytes(blob))
    elif damage == "truncated":
        path.write_bytes(bytes(blob[: len(blob) // 3]))
    elif damage == "edited replicate":
        # a well-formed entry whose numbers are not the ones its checksum covers
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["boot_tpr_at_fpr"] = arrays["boot_tpr_at_fpr"] + 0.01
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    else:  # another entry's (whole, valid) file under this key
        other = synthetic(3)
        second = bootstrap_reusing(other, measured(other), OPTIONS, BOOT, store=store)
        path.write_bytes(store.path(second.key).read_bytes())
    again = bootstrap_reusing(data, metrics, OPTIONS, BOOT, store=store)
    assert not again.reused
    assert same_bits(again.replicates, first.replicates)
    assert bootstrap_reusing(data, metrics, OPTIONS, BOOT, store=store).reused  # rewritten whole


def test_an_unwritable_store_only_costs_the_reuse(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder would be\n")
    data = synthetic(2)
    store = ReplicateStore(blocker / "bootstrap")
    done = bootstrap_reusing(data, measured(data), OPTIONS, BOOT, store=store)
    assert not done.reused and done.replicates
    assert not bootstrap_reusing(data, measured(data), OPTIONS, BOOT, store=store).reused


def test_no_resamples_no_entry(tmp_path):
    data = synthetic(2)
    done = bootstrap_reusing(data, measured(data), OPTIONS, BootstrapOptions(B=0), store=ReplicateStore(tmp_path))
    assert done.replicates == {} and not done.reused and not list(tmp_path.iterdir())
