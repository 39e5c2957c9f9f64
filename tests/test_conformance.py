"""The conformance kit (fiqa_bench.testing): every built-in passes it, and it fails on broken adapters.

A kit that cannot fail is useless, so each check is shown to catch the fault it exists for, on a small adapter
that is correct except for that one fault.
"""

from __future__ import annotations

import dataclasses
import sys
import textwrap
import threading

import numpy as np
import pytest

from fiqa_bench import registry
from fiqa_bench.api import Backbone, QualityMethod
from fiqa_bench.api.cards import BackboneCard, InputSpec, MethodCard
from fiqa_bench.methods.blur import BlurQuality
from fiqa_bench.methods.jpeg import JpegQuality
from fiqa_bench.methods.random_select import RandomQuality
from fiqa_bench.testing import (
    adapter_checks,
    backbone_checks,
    check_backbone,
    check_light_import,
    check_method,
    method_checks,
    parametrize_with_checks,
    prepare,
    synthetic_faces,
    synthetic_inputs,
)

BUILTINS = [RandomQuality(), RandomQuality(seed=11), BlurQuality(), JpegQuality()]


@parametrize_with_checks(BUILTINS)
def test_builtin_methods_conform(adapter, check):
    check()


def _builtin_method_names() -> list[str]:
    return [name for name, e in registry.entries("method").items() if e.distribution == "fiqa-bench"]


@pytest.mark.parametrize("name", _builtin_method_names())
def test_every_registered_builtin_method_conforms(name, request):
    cls = registry.load_class("method", name)
    kwargs, images = {}, None
    if cls.card.needs_backbone:  # e.g. svm: given the run's backbone, here the shared MobileFaceNet (bundled model)
        shared = request.getfixturevalue("shared")
        kwargs["backbone"] = registry.create(
            "backbone", f"onnx:{shared / 'models/mobilefacenet/mobilefacenet.onnx'}", normalisation="mobilefacenet"
        )
        if set(cls.card.needs_capabilities) - set(kwargs["backbone"].card.capabilities):  # serfiq, grafiqs, faceqan
            pytest.importorskip("torch")
            kwargs["backbone"] = registry.create("backbone", "torch-mobilefacenet")
            images = synthetic_faces(2)
            if name == "faceqan":  # ~150 forward passes per face at the paper's settings: a smaller attack
                kwargs.update(iterations=2, copies=3)
    weights = getattr(cls.card, "weights", None)
    if weights is not None and weights.bundled and not kwargs:  # per-backbone files: the method finds its own
        import importlib.resources

        shipped = importlib.resources.files("fiqa_bench.methods").joinpath("weights", weights.filename)
        if not shipped.is_file():
            pytest.skip(
                f"{name}: bundled weights {weights.filename} are not trained yet "
                f"(its own tests run the kit on a freshly trained model)"
            )
    check_method(registry.create("method", name, **kwargs), images)


# ------------------------------------------------------------------------------------------ a correct adapter
CARD = MethodCard(
    name="test-mean",
    version="1",
    summary="mean grey level of the aligned crop (a correct adapter for the kit's tests)",
    licence="MIT",
    input=InputSpec("aligned", 112, "RGB"),
    score_range="[0, 255]",
)


class MeanQuality(QualityMethod):
    card = CARD

    def score(self, images):
        if len(images) == 0:
            return np.zeros(0, np.float32)
        return np.asarray(images, np.float64).reshape(len(images), -1).mean(axis=1).astype(np.float32)


def _failed_checks(adapter, checks=adapter_checks, skip=("light_import",)) -> dict[str, str]:
    """{check name: message} of every check that fails (the import check, a subprocess, is tested on its own)."""
    failed = {}
    for name, check in checks(adapter):
        if name in skip:
            continue
        try:
            check()
        except AssertionError as exc:
            failed[name] = str(exc)
    return failed


def test_a_correct_adapter_passes_every_check():
    assert _failed_checks(MeanQuality(), skip=()) == {}
    check_method(MeanQuality())


def test_check_names_are_stable():
    assert [n for n, _ in method_checks(MeanQuality())] == [
        "card",
        "output",
        "finite",
        "batch_equals_single",
        "order_equivariant",
        "deterministic",
        "inputs_unchanged",
        "empty",
        "pickle",
        "capabilities",
        "light_import",
    ]


# ------------------------------------------------------------------------------------------ broken adapters
class ReturnsNaN(MeanQuality):
    def score(self, images):
        out = super().score(images)
        out[::2] = np.nan
        return out


class ReturnsColumn(MeanQuality):
    def score(self, images):
        return super().score(images)[:, None]


class ReturnsFloat64(MeanQuality):
    def score(self, images):
        return super().score(images).astype(np.float64)


class ReturnsList(MeanQuality):
    def score(self, images):
        return super().score(images).tolist()


class Noisy(MeanQuality):
    def score(self, images):
        return super().score(images) + np.random.default_rng().normal(0, 1, len(images)).astype(np.float32)


class PositionDependent(MeanQuality):
    def score(self, images):
        return super().score(images) + np.arange(len(images), dtype=np.float32)


class BatchNormalised(MeanQuality):
    """Order-equivariant (the batch mean is permutation-invariant) but not batch-independent."""

    def score(self, images):
        s = super().score(images)
        return s - s.mean() if len(s) else s


class EmptyRaises(MeanQuality):
    def score(self, images):
        if len(images) == 0:
            raise ValueError("no images")
        return super().score(images)


class Mutates(MeanQuality):
    def score(self, images):
        out = super().score(images)
        if isinstance(images, np.ndarray) and images.size:
            images[..., 0] = 0  # "normalising" in place
        return out


class Unpicklable(MeanQuality):
    def __init__(self):
        self._lock = threading.Lock()


class ForgetsStateOnPickle(MeanQuality):
    def __init__(self, offset=5.0):
        self.offset = offset

    def score(self, images):
        return super().score(images) + np.float32(getattr(self, "offset", 0.0))

    def __getstate__(self):
        return {}


@pytest.mark.parametrize(
    ("adapter", "check"),
    [
        (ReturnsNaN(), "finite"),
        (ReturnsColumn(), "output"),
        (ReturnsFloat64(), "output"),
        (ReturnsList(), "output"),
        (Noisy(), "deterministic"),
        (PositionDependent(), "order_equivariant"),
        (PositionDependent(), "batch_equals_single"),
        (BatchNormalised(), "batch_equals_single"),
        (EmptyRaises(), "empty"),
        (Mutates(), "inputs_unchanged"),
        (Unpicklable(), "pickle"),
        (ForgetsStateOnPickle(), "pickle"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_kit_catches_broken_adapters(adapter, check):
    failed = _failed_checks(adapter)
    assert check in failed, f"{type(adapter).__name__} should fail {check!r}; failed: {sorted(failed)}"
    assert failed[check].startswith(f"[{check}] 'test-mean'")
    with pytest.raises(AssertionError):
        check_method(adapter)


def test_batch_normalised_adapter_is_still_order_equivariant():
    """The checks are distinct: each names its own fault, not a vague 'something is wrong'."""
    failed = _failed_checks(BatchNormalised())
    assert "order_equivariant" not in failed and "batch_equals_single" in failed


def _with_card(**changes):
    return type("Changed", (MeanQuality,), {"card": dataclasses.replace(CARD, **changes)})()


@pytest.mark.parametrize(
    ("adapter", "message"),
    [
        (_with_card(licence=""), "card.licence"),
        (_with_card(licence="   "), "card.licence"),
        (_with_card(version=""), "card.version"),
        (_with_card(summary=""), "card.summary"),
        (_with_card(name=""), "card.name"),
        (_with_card(name="my method"), "no spaces"),
        (_with_card(name="onnx:x"), "no spaces and no ':'"),
        (_with_card(input="aligned"), "InputSpec"),
        (_with_card(higher_is_better="yes"), "higher_is_better"),
        (_with_card(score_range=""), "score_range"),
        (_with_card(weights="model.onnx"), "Weights"),
        (type("DictCard", (MeanQuality,), {"card": {"name": "x"}})(), "MethodCard"),
        (type("BackboneCarded", (MeanQuality,), {"card": BackboneCard("x", "1", "y", "MIT")})(), "MethodCard"),
    ],
    ids=lambda v: v if isinstance(v, str) else getattr(getattr(v, "card", None), "name", "?") or "?",
)
def test_kit_catches_bad_cards(adapter, message):
    with pytest.raises(AssertionError, match=r"^\[card\]") as info:
        check_method(adapter)
    assert message in str(info.value)


def test_card_must_be_a_class_attribute():
    method = MeanQuality()
    method.card = dataclasses.replace(CARD, version="2")  # set per instance: listing would see another card
    with pytest.raises(AssertionError, match="class attribute"):
        check_method(method)


# ------------------------------------------------------------------------------------------ heavy imports
def _module(tmp_path, monkeypatch, name: str, header: str):
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(f"""
        {header}
        import numpy as np
        from fiqa_bench.api import QualityMethod
        from fiqa_bench.api.cards import InputSpec, MethodCard

        class Method(QualityMethod):
            card = MethodCard("{name}", "1", "test", "MIT", input=InputSpec("aligned", 112, "RGB"))

            def score(self, images):
                return np.zeros(len(images), np.float32)
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    import importlib

    return importlib.import_module(name).Method()


@pytest.mark.parametrize("heavy", ["onnxruntime", "cv2"])
def test_kit_catches_heavy_imports_at_module_level(tmp_path, monkeypatch, heavy):
    method = _module(tmp_path, monkeypatch, f"fiqa_heavy_{heavy}", f"import {heavy}  # at import time: too early")
    with pytest.raises(AssertionError, match=rf"^\[light_import\].*imports {heavy}"):
        check_light_import(method)


def test_light_module_passes_the_import_check(tmp_path, monkeypatch):
    method = _module(tmp_path, monkeypatch, "fiqa_light_adapter", "import json  # light")
    check_light_import(method)


# ------------------------------------------------------------------------------------------ inputs
def test_caller_images_are_used_and_validated():
    images = synthetic_inputs(CARD.input, n=3, seed=4)
    check_method(MeanQuality(), images)
    with pytest.raises(AssertionError, match="at least 2 images"):
        check_method(MeanQuality(), images[:1])
    # scores fine on synthetic 112 crops, but the caller's 64 px crops expose a size assumption
    with pytest.raises(AssertionError, match=r"\[output\]"):
        check_method(BlurQuality(), synthetic_inputs(InputSpec("aligned", 64, "RGB"), n=3))


def test_synthetic_faces_are_reproducible_varied_and_prepared_as_specified():
    a, b = synthetic_faces(6, seed=2), synthetic_faces(6, seed=2)
    assert all(np.array_equal(x.image, y.image) and np.array_equal(x.landmarks, y.landmarks) for x, y in zip(a, b))
    assert not np.array_equal(a[0].image, synthetic_faces(6, seed=3)[0].image)
    assert len({f.image.shape for f in a}) > 1
    for f in a:
        assert f.image.dtype == np.uint8 and f.image.ndim == 3 and f.landmarks.shape == (5, 2)
        assert f.box is not None and len(f.box) == 4
    rgb = prepare(a, InputSpec("aligned", 112, "RGB"))
    bgr = prepare(a, InputSpec("aligned", 112, "BGR"))
    assert rgb.shape == (6, 112, 112, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb, bgr[..., ::-1])
    assert prepare(a, InputSpec("aligned", 64, "RGB")).shape == (6, 64, 64, 3)
    assert prepare(a, InputSpec("face")) == a
    # the degraded variants really are degraded: the blurred face (index 1) is the least sharp
    sharp = BlurQuality().score(rgb)
    assert sharp[1] == sharp.min()
    # the border-cut face (index 5) has a black band in its aligned crop, as real edge faces do
    assert (rgb[5].max(axis=2) == 0).mean() > 0.05


def test_parametrize_with_checks_makes_one_case_per_check():
    mark = parametrize_with_checks([MeanQuality(), RandomQuality()])
    names, values = mark.args
    assert names == ("adapter", "check")
    ids = mark.kwargs["ids"]
    assert len(values) == len(ids) == 2 * len(method_checks(MeanQuality()))
    assert "test-mean-batch_equals_single" in ids and "random-pickle" in ids


# ------------------------------------------------------------------------------------------ backbones
BB_CARD = BackboneCard(
    name="test-tiny",
    version="1",
    summary="8x8 grey thumbnail, L2-normalised (a correct backbone for the kit's tests)",
    licence="MIT",
    input=InputSpec("aligned", 112, "RGB"),
    embedding_dim=64,
)


class TinyBackbone(Backbone):
    card = BB_CARD

    def embed(self, images):
        if len(images) == 0:
            return np.zeros((0, 64), np.float32)
        x = np.asarray(images, np.float64).mean(axis=3)
        x = x.reshape(len(x), 8, 14, 8, 14).mean(axis=(2, 4)).reshape(len(x), 64)
        x -= x.mean(axis=1, keepdims=True)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class WrongDim(TinyBackbone):
    card = dataclasses.replace(BB_CARD, embedding_dim=128)


class BackboneNaN(TinyBackbone):
    def embed(self, images):
        out = super().embed(images)
        out[:, 0] = np.nan
        return out


class BackboneBatchDependent(TinyBackbone):
    def embed(self, images):
        out = super().embed(images)
        return out - out.mean(axis=0, keepdims=True) * 0.5 if len(out) else out


class BackboneFloat64(TinyBackbone):
    def embed(self, images):
        return super().embed(images).astype(np.float64)


def test_a_correct_backbone_passes():
    assert _failed_checks(TinyBackbone(), skip=()) == {}
    check_backbone(TinyBackbone())
    assert [n for n, _ in backbone_checks(TinyBackbone())] == [n for n, _ in method_checks(MeanQuality())]


@pytest.mark.parametrize(
    ("backbone", "check"),
    [
        (WrongDim(), "output"),
        (BackboneNaN(), "finite"),
        (BackboneBatchDependent(), "batch_equals_single"),
        (BackboneFloat64(), "output"),
        (type("NoDim", (TinyBackbone,), {"card": dataclasses.replace(BB_CARD, embedding_dim=0)})(), "card"),
        (type("MethodCarded", (TinyBackbone,), {"card": CARD})(), "card"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_kit_catches_broken_backbones(backbone, check):
    failed = _failed_checks(backbone, backbone_checks)
    assert check in failed, f"{type(backbone).__name__} should fail {check!r}; failed: {sorted(failed)}"
