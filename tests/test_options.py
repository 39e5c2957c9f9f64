"""Typed adapter options: declared by annotations or OPTIONS, parsed from text before any work."""

from __future__ import annotations

import os

import pytest

from fiqa_bench.api.options import Option, declared_options, parse_options
from fiqa_bench.errors import OptionError


class Annotated:
    OPTION_HELP = {"flip": "add the mirrored image's features"}

    def __init__(
        self,
        backbone=None,
        flip: bool = False,
        batch_size: int = 32,
        eps: float = 0.1,
        weights: str | os.PathLike | None = None,
        name: str = "x",
        extra: dict | None = None,
    ):
        pass


class Plain:
    def __init__(self, anything=None):
        pass


def test_options_from_annotations():
    opts = {o.name: o for o in declared_options(Annotated)}
    assert set(opts) == {"flip", "batch_size", "eps", "weights", "name"}  # not backbone, not the dict
    assert (opts["flip"].type, opts["batch_size"].type, opts["eps"].type, opts["weights"].type) == (
        "bool",
        "int",
        "float",
        "path",
    )
    assert opts["flip"].help == "add the mirrored image's features" and opts["batch_size"].default == 32


@pytest.mark.parametrize(
    "text, value",
    [("False", False), ("false", False), ("0", False), ("no", False), ("True", True), ("yes", True), ("1", True)],
)
def test_bool_is_parsed_not_truthy(text, value):
    assert parse_options(Annotated, "method 'a'", {"flip": text}) == {"flip": value}


def test_wrong_values_are_named_errors(tmp_path):
    with pytest.raises(OptionError, match="method 'a': option 'batch_size' must be an integer, got 'x'"):
        parse_options(Annotated, "method 'a'", {"batch_size": "x"})
    with pytest.raises(OptionError, match="option 'eps' must be a number"):
        parse_options(Annotated, "method 'a'", {"eps": "tiny"})
    with pytest.raises(OptionError, match="option 'weights': .*nope.onnx: no such file"):
        parse_options(Annotated, "method 'a'", {"weights": str(tmp_path / "nope.onnx")})
    with pytest.raises(OptionError, match=r"method 'a' has no option 'batchsize'. Did you mean 'batch_size'\?"):
        parse_options(Annotated, "method 'a'", {"batchsize": "3"})
    f = tmp_path / "w.onnx"
    f.write_bytes(b"x")
    assert parse_options(Annotated, "m", {"weights": str(f), "batch_size": "8"}) == {"weights": str(f), "batch_size": 8}


def test_explicit_options_with_choices_and_minimum():
    class Explicit:
        OPTIONS = (Option("mode", "str", "a", "how", choices=("a", "b")), Option("n", "int", 1, "", min=1))

    assert parse_options(Explicit, "m", {"mode": "b", "n": "3"}) == {"mode": "b", "n": 3}
    with pytest.raises(OptionError, match="must be one of a, b"):
        parse_options(Explicit, "m", {"mode": "c"})
    with pytest.raises(OptionError, match="must be >= 1"):
        parse_options(Explicit, "m", {"n": "0"})


def test_an_undeclared_plugin_gets_its_text():
    assert declared_options(Plain) is None
    assert parse_options(Plain, "m", {"anything": "x"}) == {"anything": "x"}
