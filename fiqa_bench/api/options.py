"""Typed adapter options (``--method-option`` / ``--fr-option KEY=VALUE``): declared once, parsed and checked before
any work starts, listed by ``fiqa-bench list``.

An adapter declares its options either explicitly, as ``OPTIONS = (Option(...), ...)`` on the class, or by its
constructor's annotated keyword parameters (``batch_size: int = 32``, ``flip: bool = False``, ``weights: str |
os.PathLike | None = None``), with help texts in ``OPTION_HELP = {"name": "..."}``. Values arrive as text and are
converted by type — ``bool`` accepts true/false/yes/no/1/0 (never Python's ``bool("False") is True``), ``int`` and
``float`` must parse, a path must name an existing file — so a mistyped value is one clear error naming the adapter
and the option, before any image is read.
"""

from __future__ import annotations

import difflib
import inspect
import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fiqa_bench.errors import OptionError

TYPES = ("str", "int", "float", "bool", "path")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
#: Constructor parameters that are never user options (the runner passes them, or they are not text).
NOT_OPTIONS = {"self", "backbone", "backbone_options", "path", "card"}


@dataclass(frozen=True)
class Option:
    name: str
    type: str = "str"
    default: Any = None
    help: str = ""
    choices: tuple = ()
    min: float | None = None

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"option {self.name!r}: type must be one of {TYPES}, got {self.type!r}")

    def parse(self, text: str, who: str, locate: Any = None) -> Any:
        """The typed value of ``text``; an :class:`OptionError` naming ``who`` and the option when it does not fit.

        ``locate(name, text)``: the adapter's own lookup of a file option that is not a file here (e.g. the name of
        a bundled alternative model); the text is kept as typed, so results record no installation path."""
        value: Any
        raw = str(text)
        if self.type == "bool":
            low = raw.strip().lower()
            if low not in _TRUE | _FALSE:
                raise OptionError(f"{who}: option {self.name!r} must be true or false, got {raw!r}")
            value = low in _TRUE
        elif self.type == "int":
            try:
                value = int(raw)
            except ValueError:
                raise OptionError(f"{who}: option {self.name!r} must be an integer, got {raw!r}") from None
        elif self.type == "float":
            try:
                value = float(raw)
            except ValueError:
                raise OptionError(f"{who}: option {self.name!r} must be a number, got {raw!r}") from None
        elif self.type == "path":
            p = Path(raw).expanduser()
            found = locate(self.name, raw) if (locate is not None and not p.is_file()) else None
            if not p.is_file() and not (found is not None and Path(found).is_file()):
                raise OptionError(f"{who}: option {self.name!r}: {raw}: no such file")
            value = raw
        else:
            value = raw
        if self.choices and value not in self.choices:
            raise OptionError(
                f"{who}: option {self.name!r} must be one of {', '.join(map(str, self.choices))}, got {raw!r}"
            )
        if self.min is not None and isinstance(value, (int, float)) and value < self.min:
            raise OptionError(f"{who}: option {self.name!r} must be >= {self.min:g}, got {raw!r}")
        return value

    def describe(self) -> str:
        kind = self.type if not self.choices else "|".join(map(str, self.choices))
        default = "" if self.default is None else f" (default {self.default})"
        return f"{self.name}={kind}{default}" + (f": {self.help}" if self.help else "")


def _annotation_type(annotation: Any) -> str | None:
    """The option type of a constructor annotation (None: not a text option, e.g. a dict or an object)."""
    if annotation is inspect.Parameter.empty:
        return None
    args: Sequence[Any] = typing.get_args(annotation) or (annotation,)
    args = [a for a in args if a is not type(None)]
    if any(a is os.PathLike or getattr(a, "__origin__", None) is os.PathLike or a is Path for a in args):
        return "path"
    for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str")):
        if any(a is t for a in args):
            return name
    return None


def declared_options(cls: type[Any]) -> tuple[Option, ...] | None:
    """The options ``cls`` declares (explicit ``OPTIONS``, else its annotated constructor); None when it declares
    none that can be typed (a plugin with an unannotated constructor: options then pass through as text)."""
    explicit = getattr(cls, "OPTIONS", None)
    if explicit is not None:
        return tuple(explicit)
    try:
        sig = inspect.signature(cls.__init__)
        hints = typing.get_type_hints(cls.__init__)
    except (TypeError, ValueError, NameError):
        return None
    helps = getattr(cls, "OPTION_HELP", {}) or {}
    out = []
    for name, p in sig.parameters.items():
        if name in NOT_OPTIONS or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        t = _annotation_type(hints.get(name, p.annotation))
        if t is None:
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        out.append(Option(name, t, default, helps.get(name, "")))
    return tuple(out) if out else (() if getattr(cls, "OPTION_HELP", None) is not None else None)


def parse_options(cls: type, who: str, given: dict[str, str], reserved: dict[str, str] | None = None) -> dict:
    """Typed values of ``given`` (text) for ``cls``'s declared options. Unknown names, reserved names and values of
    the wrong type are one :class:`OptionError` naming ``who``; an adapter that declares nothing gets the text."""
    reserved = reserved or {}
    for key in given:
        if key in reserved:
            raise OptionError(f"{who}: option {key!r} cannot be given here ({reserved[key]})")
    options = declared_options(cls)
    if options is None:
        return dict(given)
    by_name = {o.name: o for o in options if o.name not in reserved}
    out = {}
    for key, text in given.items():
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            listed = ", ".join(by_name) if by_name else "none"
            raise OptionError(f"{who} has no option {key!r}.{hint} Its options: {listed}")
        out[key] = by_name[key].parse(text, who, getattr(cls, "locate_option_file", None))
    return out
