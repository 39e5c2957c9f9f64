"""Values for the settings of :class:`fiqa_bench.config.RunConfig`, read off each field's declaration (choices,
range, type), for the tests that loop over the declaration."""

from __future__ import annotations

import dataclasses
from dataclasses import fields

from fiqa_bench.config import RunConfig, option_choices

#: The settings that can change a number of a run, as the declaration says (``numbers=True``).
NUMBERS = [f for f in fields(RunConfig) if f.metadata.get("numbers")]


def other_value(f: dataclasses.Field, current):
    """A valid value of ``f`` other than ``current``, from its declaration: another choice, the other truth value,
    a number inside the declared range, another option."""
    meta = f.metadata
    if meta.get("choices"):
        return next(c for c in option_choices(meta) if c != current)
    if isinstance(current, bool):
        return not current
    if isinstance(current, int):
        low = meta.get("min")
        candidate = low + 1 if low is not None and low + 1 != current else current + 1
        assert meta.get("max") is None or candidate <= meta["max"]
        return candidate
    if isinstance(current, float):
        high = meta.get("max")
        return (current + high) / 2.0 if high is not None else current * 2.0 + 1.0
    if isinstance(current, tuple):
        return current + (("extra", "1"),)
    if isinstance(current, str):
        return current + "-other"
    raise AssertionError(f"no other value for {f.name} = {current!r}: extend other_value")
