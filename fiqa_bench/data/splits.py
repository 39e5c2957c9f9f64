"""The identity split between training quality models and evaluating them.

Learned quality methods (tinyFQnet, SVM, RQS, FaceQnet) are trained on the ``train`` part of the development
identities and evaluated on benchmarks prepared from the ``eval`` part, so no evaluated identity was ever seen
in training. The part of an identity is a pure function of its folder name — the lowest bit of the first byte
of ``sha256(name)`` (1 = eval) — so it is the same on every machine, for any dataset, without a stored list.
"""

from __future__ import annotations

import hashlib

PARTS = ("train", "eval", "all")


def identity_part(name: str) -> str:
    """``"train"`` or ``"eval"`` for an identity folder name."""
    return "eval" if hashlib.sha256(str(name).encode("utf-8")).digest()[0] & 1 else "train"


def in_part(name: str, part: str) -> bool:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    return part == "all" or identity_part(name) == part
