"""Backbone capabilities: declared on cards, checked before any work, one error naming method and backbone."""

from __future__ import annotations

import numpy as np
import pytest

from fiqa_bench.api.capabilities import CAPABILITIES, check_capabilities, missing_capabilities
from fiqa_bench.errors import CapabilityError, FiqaBenchError


def _classes():
    from fiqa_bench.methods.faceqan import FaceQAN
    from fiqa_bench.methods.grafiqs import GraFIQs
    from fiqa_bench.methods.norm import EmbeddingNorm
    from fiqa_bench.methods.serfiq import SerFiq

    return {"serfiq": SerFiq, "grafiqs": GraFIQs, "faceqan": FaceQAN, "norm": EmbeddingNorm}


def test_method_cards_declare_what_they_need():
    needs = {name: cls.card.needs_capabilities for name, cls in _classes().items()}
    assert needs == {
        "serfiq": ("stochastic",),
        "grafiqs": ("layers",),
        "faceqan": ("layers",),
        "norm": ("raw_features",),
    }
    for cls in _classes().values():
        assert cls.card.needs_backbone and set(cls.card.needs_capabilities) <= set(CAPABILITIES)
        assert cls.card.paper  # each names its paper


def test_onnx_backbone_offers_raw_features_only(mbf):
    from fiqa_bench.registry import create

    onnx = create("backbone", mbf)
    assert onnx.card.capabilities == ("raw_features",)
    check_capabilities(_classes()["norm"], onnx)  # norm works on onnx:PATH
    for name in ("serfiq", "grafiqs", "faceqan"):
        cls = _classes()[name]
        with pytest.raises(CapabilityError) as info:
            check_capabilities(cls, onnx)
        msg = str(info.value)
        assert f"quality method {name!r}" in msg and "backbone 'onnx'" in msg and "offers raw_features" in msg
        assert repr(cls.card.needs_capabilities[0]) in msg and "\n" not in msg
        with pytest.raises(CapabilityError):  # the constructor checks too: before any image is read
            cls(backbone=onnx)


def test_a_backbone_without_the_field_offers_nothing():
    class Plain:  # a duck-typed third-party backbone: a card without capabilities
        card = type("Card", (), {"name": "plain"})()

    assert missing_capabilities(_classes()["norm"], Plain()) == ["raw_features"]
    with pytest.raises(CapabilityError, match="backbone 'plain' offers none beyond embed()"):
        check_capabilities(_classes()["norm"], Plain())
    # a method that needs nothing is happy with any backbone
    from fiqa_bench.methods.blur import BlurQuality

    check_capabilities(BlurQuality, Plain())


def test_torch_backbone_satisfies_every_method(shared, isolated_cache):
    pytest.importorskip("torch")
    from fiqa_bench.backbones.torch_mobilefacenet import TorchMobileFaceNet

    b = TorchMobileFaceNet()
    for cls in _classes().values():
        check_capabilities(cls, b)


def test_run_stops_before_any_work_with_one_error(shared, small_bench, mbf, tmp_path, isolated_cache):
    from fiqa_bench.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(
            [
                "run",
                "--method",
                "serfiq",
                "--fr",
                mbf,
                "--protocol",
                str(small_bench),
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
    assert info.value.code == 2
    assert not list(tmp_path.glob("*.json"))
    assert not (isolated_cache / "quality").exists() and not (isolated_cache / "embeddings").exists()


def test_errors_are_fiqa_bench_errors():
    assert issubclass(CapabilityError, FiqaBenchError)
    assert np.all([isinstance(v, str) and v for v in CAPABILITIES.values()])


# ------------------------------------------------------------------------------------------ conformance kit
def test_kit_checks_declared_capabilities(shared, isolated_cache):
    pytest.importorskip("torch")
    import dataclasses

    from fiqa_bench.backbones.onnx_arcface import PerInstanceCard
    from fiqa_bench.backbones.torch_mobilefacenet import TorchMobileFaceNet
    from fiqa_bench.testing import backbone_checks, synthetic_inputs

    images = synthetic_inputs(TorchMobileFaceNet.card.input, n=3)
    dict(backbone_checks(TorchMobileFaceNet(), images))["capabilities"]()  # honours all three

    class NoDropout(TorchMobileFaceNet):  # claims 'stochastic' but its passes are all the plain embedding
        card = PerInstanceCard(dataclasses.replace(TorchMobileFaceNet.card, name="no-dropout"))

        def stochastic_embed(self, images, passes=100, rate=0.5, seed=0):
            return np.repeat(self.embed(images)[:, None], passes, axis=1)

    with pytest.raises(AssertionError, match=r"\[capabilities\].*passes are all equal"):
        dict(backbone_checks(NoDropout(), images))["capabilities"]()

    class Normalised(TorchMobileFaceNet):  # claims raw features but returns unit vectors
        card = PerInstanceCard(dataclasses.replace(TorchMobileFaceNet.card, name="normalised"))

        def embed(self, images):
            e = super().embed(images)
            return e / np.linalg.norm(e, axis=1, keepdims=True)

    with pytest.raises(AssertionError, match=r"\[capabilities\].*L2-normalised"):
        dict(backbone_checks(Normalised(), images))["capabilities"]()


def test_kit_checks_method_declarations():
    import dataclasses

    from fiqa_bench.testing import check_method_capabilities

    norm = _classes()["norm"]
    check_method_capabilities(norm())

    class Typo(norm):
        card = dataclasses.replace(norm.card, needs_capabilities=("stochastc",))

    with pytest.raises(AssertionError, match="unknown capabilities"):
        check_method_capabilities(Typo())

    class NoBackbone(norm):
        card = dataclasses.replace(norm.card, needs_backbone=False)

    with pytest.raises(AssertionError, match="needs_backbone is False"):
        check_method_capabilities(NoBackbone())


def test_runner_checks_before_constructing_the_method(mbf, monkeypatch):
    from fiqa_bench import registry
    from fiqa_bench.pipeline import runner

    backbone = registry.create("backbone", mbf)

    def never(*args, **kwargs):
        raise AssertionError("the method was constructed before its capabilities were checked")

    monkeypatch.setattr(runner.registry, "create", never)
    cfg = runner.RunConfig(protocol="lfw", backbone=mbf, method="grafiqs")
    with pytest.raises(CapabilityError, match="'grafiqs' needs backbone capability 'layers'"):
        runner.build_method(cfg, backbone)
