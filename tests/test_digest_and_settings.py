"""Derived from the run configuration's declaration (:class:`fiqa_bench.config.RunConfig`, each field's
metadata):
every setting that can change a number (``numbers=True``) changes the results file name's digest, and every other
setting leaves it alone (equal runs, equal names). A new setting is covered as soon as it is declared; one declared
without ``numbers`` must be listed below with the reason it cannot change a number.

(``rescore`` honouring the same settings is tests/test_mutations_rescore.py, from the same declaration.)
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest

from _settings import NUMBERS, other_value
from fiqa_bench import registry
from fiqa_bench.config import RunConfig, run_settings
from fiqa_bench.results.record import settings_digest

#: Settings that cannot change a number, with the reason (a new setting must be declared ``numbers=True`` or be
#: listed here).
NOT_NUMBERS = {
    "protocol": "names the benchmark: the digest holds the loaded benchmark's name and pair-list sha256, not the "
    "spelling (a folder given by another path is the same run)",
    "data": "where the benchmark lies, as protocol",
    "batch_size": "images per adapter call: the conformance kit requires batch-independent adapters",
    "workers": "threads / processes: the same values in any order",
    "executor": "where the stages run: the same numbers either way",
    "ray_address": "which Ray cluster",
    "ray_actors": "how many Ray actors",
    "out": "the results folder",
    "progress": "progress bars",
    "keep_embeddings": "what the .npz keeps besides the numbers (the kept images' embeddings)",
}

#: A configuration in which every setting is in play: a method that takes a seed ran, topk (k counts), landmarks
#: were detected (the detector counts); the protocol reports every registered metric (each metric's options count).
BASE = RunConfig(
    protocol="bench", backbone="onnx:/models/one.onnx", method="random", selection="topk", out="results", progress=False
)
PROTOCOL = {"name": "bench", "pairs_sha256": "0" * 64, "metrics": registry.names("metric")}


def _digest(cfg: RunConfig, protocol: dict = PROTOCOL) -> str:
    return settings_digest(
        run_settings(
            cfg,
            method_ran=True,
            method_takes_seed=True,
            detection_used=True,
            options_sha256={},
            backbone_sha256=None,
            protocol=protocol,
        )
    )


def test_every_setting_is_declared_as_changing_the_numbers_or_listed_with_a_reason():
    declared = {f.name for f in fields(RunConfig)}
    numbers = {f.name for f in NUMBERS}
    assert numbers and not (numbers & set(NOT_NUMBERS))
    assert declared - numbers == set(NOT_NUMBERS), "declare the new setting numbers=True or list it in NOT_NUMBERS"
    # the EDC, TPR-reading and bootstrap settings are among them (what rescore must read back)
    assert {
        "fpr_reading",
        "pair_quality",
        "fnm_start",
        "fm_start",
        "rethreshold_fmr",
        "bootstrap",
        "bootstrap_level",
        "bootstrap_seed",
        "selection",
        "k",
        "flip",
    } <= numbers


@pytest.mark.parametrize("f", NUMBERS, ids=lambda f: f.name)
def test_a_setting_that_changes_the_numbers_changes_the_digest(f):
    changed = replace(BASE, **{f.name: other_value(f, getattr(BASE, f.name))})
    assert getattr(changed, f.name) != getattr(BASE, f.name)
    assert _digest(changed) != _digest(BASE), f"{f.name} is not in the results file name's digest"


@pytest.mark.parametrize("name", sorted(NOT_NUMBERS))
def test_a_setting_that_cannot_change_the_numbers_keeps_the_digest(name):
    f = next(f for f in fields(RunConfig) if f.name == name)
    current = getattr(BASE, name)
    value = other_value(f, current) if current is not None else "elsewhere"
    if name == "ray_address":
        changed = replace(BASE, executor="ray", ray_address="HEAD:6379")
    else:
        changed = replace(BASE, **{name: value})
    assert _digest(changed) == _digest(BASE)


def test_the_benchmark_is_in_the_digest_by_its_name_and_pair_list():
    assert _digest(BASE, {**PROTOCOL, "name": "other"}) != _digest(BASE)
    assert _digest(BASE, {**PROTOCOL, "pairs_sha256": "1" * 64}) != _digest(BASE)


@pytest.mark.parametrize(
    "name,value",
    [("fnm_start", 0.05 + 1e-12), ("fm_start", 1e-3 * (1 + 1e-9)), ("rethreshold_fmr", 2e-3), ("pair_quality", "mean")],
)
def test_each_edc_setting_alone_changes_the_digest(name, value):
    """The EDC settings one at a time, including a change in the last digits (the digest is of the exact value)."""
    assert _digest(replace(BASE, **{name: value})) != _digest(BASE)


def _committed_results() -> list[Path]:
    root = Path(__file__).resolve().parents[1] / "reports"
    return sorted(p for p in root.rglob("*.json") if p.with_suffix(".npz").is_file())


def test_every_committed_results_file_name_is_derived_again_from_its_recorded_config():
    """The digest is derived from the declaration (each setting's place and when it matters): rebuilt from every
    committed results file's recorded ``config``, ``run_settings`` gives exactly the settings the file records, and
    their digest is the one in its name. The four facts a run learns while running (did the method run, does it take
    a seed, were landmarks detected, which option files had which hash) are read from the recorded settings; every
    other entry is derived."""
    import json

    from fiqa_bench.results.record import settings_digest as digest

    files = _committed_results()
    assert len(files) >= 100
    known = {f.name for f in fields(RunConfig)}
    for path in files:
        record = json.loads(path.read_text(encoding="utf-8"))
        config, recorded = record["config"], record["settings"]
        values = {k: v for k, v in config.items() if k in known}
        values["method_options"] = tuple(sorted((config.get("method_options") or {}).items()))
        values["backbone_options"] = tuple(sorted((config.get("backbone_options") or {}).items()))
        values["add_metrics"] = tuple(config.get("add_metrics") or ())
        cfg = RunConfig(**values, progress=False)
        options_sha256 = {
            k: v[len("sha256:") :] for k, v in recorded["method_options"].items() if str(v).startswith("sha256:")
        }
        protocol = {
            "name": recorded["protocol"],
            "pairs_sha256": recorded["pairs_sha256"],
            "metrics": record["protocol"]["metrics"],
        }
        derived = run_settings(
            cfg,
            method_ran=recorded["method"] is not None,
            method_takes_seed="seed" in recorded,
            detection_used="detector" in recorded,
            options_sha256=options_sha256,
            backbone_sha256=recorded.get("backbone_sha256"),
            protocol=protocol,
        )
        assert derived == recorded, path.name
        assert path.stem.endswith("__" + digest(derived)), path.name
