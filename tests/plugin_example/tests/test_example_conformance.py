"""The adapter passes fiqa-bench's conformance kit, and scores what its docstring says."""

import numpy as np
from fiqa_example_adapter import ContrastQuality

from fiqa_bench import registry
from fiqa_bench.testing import parametrize_with_checks, synthetic_inputs


@parametrize_with_checks([ContrastQuality()])
def test_conformance(adapter, check):
    check()


def test_registered_under_its_entry_point():
    assert registry.load_class("method", "example-contrast") is ContrastQuality


def test_flat_face_has_zero_contrast_and_stripes_have_half():
    flat = np.full((1, 112, 112, 3), 128, np.uint8)
    stripes = np.zeros((1, 112, 112, 3), np.uint8)
    stripes[:, :, ::2] = 255  # half black, half white columns: std of {0, 1} = 0.5
    assert ContrastQuality().score(flat)[0] == 0.0
    assert abs(ContrastQuality().score(stripes)[0] - 0.5) < 1e-6


def test_lower_contrast_scores_lower():
    faces = synthetic_inputs(ContrastQuality.card.input, n=4)
    washed = (128 + (faces.astype(np.int16) - 128) // 3).astype(np.uint8)
    assert (ContrastQuality().score(washed) < ContrastQuality().score(faces)).all()
