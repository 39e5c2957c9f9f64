"""Typed fields of untrusted JSON: what each field may hold, checked once where a file is loaded.

A results file may come from anyone (a leaderboard takes files from outside authors), so its readers must never meet
a string where they expect a number. A *spec* says what a field holds (a number in a range, a string, an object of
known fields, a ``[low, high]`` interval); :meth:`Spec.check` walks a value and appends every problem as one line
naming the field:

* ``<field> must be <expected>, not <what it is>`` -- the wrong type (``not a string ('abc')``);
* ``<field> = <value> is not <expected>`` -- the right type, a wrong value (out of range, NaN, low > high);
* ``<field> is missing (expected <expected>)`` -- a required field left out.

Fields a spec does not name are allowed (a newer writer may add some) but must still be finite JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "Spec",
    "Num",
    "Text",
    "Flag",
    "Obj",
    "Map",
    "List",
    "Interval",
    "Anything",
    "ANY",
    "Deferred",
    "DEFERRED",
    "field_path",
    "describe",
]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def field_path(parent: str, key: Any) -> str:
    """``parent.key`` for a plain key, ``parent['1e-3']`` for any other, ``parent[2]`` for a list index."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    text = str(key)
    if _IDENT.match(text):
        return f"{parent}.{text}" if parent else text
    return f"{parent}[{text!r}]"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: Any) -> str:
    """What a JSON value is, for a message: ``a string ('abc')``, ``an integer (-3)``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({_short(value)})"
    if isinstance(value, list):
        return f"a list ({_short(value)})"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class Spec:
    """What one field holds: a JSON value of ``json_type`` (else the wrong type), then what :meth:`_check` asks of it.
    ``null``: JSON null is allowed too; ``noun`` words what is expected (``"an object"``)."""

    null = False
    json_type: type | tuple | None = None
    noun = ""

    def expected(self) -> str:
        return self.noun + " or null" if self.null else self.noun

    def check(self, value: Any, path: str, out: list[str]) -> None:
        if value is None:
            if not self.null:
                out.append(f"{path} must be {self.expected()}, not null")
        elif self.json_type is not None and not isinstance(value, self.json_type):
            out.append(f"{path} must be {self.expected()}, not {describe(value)}")
        else:
            self._check(value, path, out)

    def _check(self, value: Any, path: str, out: list[str]) -> None:
        """What a value of the right type must also be (nothing more by default)."""


class Anything(Spec):
    """Any JSON value whose numbers are finite (a field no reader interprets)."""

    null = True
    noun = "finite JSON"

    def _check(self, value: Any, path: str, out: list[str]) -> None:
        if isinstance(value, float) and not math.isfinite(value):
            out.append(f"{path} = {value!r} is not a finite number")
        elif isinstance(value, dict):
            for k, v in value.items():
                self.check(v, field_path(path, k), out)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.check(v, field_path(path, i), out)


ANY = Anything()


class Deferred(Spec):
    """A field checked elsewhere, by a declaration of its own (a metric's value): anything, here."""

    null = True
    noun = "checked by its own declaration"


DEFERRED = Deferred()


class Num(Spec):
    """A finite number (``integer``: a whole one) in ``[lo, hi]`` (``open_lo``/``open_hi``: excluding the end)."""

    json_type: type | tuple | None = (int, float)

    def __init__(
        self,
        lo: float | None = None,
        hi: float | None = None,
        *,
        integer: bool = False,
        null: bool = False,
        open_lo: bool = False,
        open_hi: bool = False,
    ):
        self.lo, self.hi, self.integer, self.null = lo, hi, integer, null
        self.open_lo, self.open_hi = open_lo, open_hi
        if integer:
            self.json_type = int
            nouns: dict[tuple[float | None, float | None], str] = {
                (None, None): "an integer",
                (0, None): "a non-negative integer",
                (1, None): "a positive integer",
            }
            self.noun = nouns.get((lo, hi), f"an integer in [{lo}, {hi}]")
        elif (lo, hi, open_lo, open_hi) == (0, 1, False, False):
            self.noun = "a fraction in [0, 1]"
        elif lo is not None and hi is not None:
            self.noun = f"a number in {'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
        elif lo is not None:
            self.noun = f"a number {'>' if open_lo else '>='} {lo:g}"
        else:
            self.noun = "a finite number"

    def check(self, value: Any, path: str, out: list[str]) -> None:
        if isinstance(value, bool):  # JSON true is no number, though Python's bool is an int
            out.append(f"{path} must be {self.expected()}, not {describe(value)}")
        else:
            super().check(value, path, out)

    def _check(self, value: Any, path: str, out: list[str]) -> None:
        ok = isinstance(value, int) or math.isfinite(value)  # an int is finite (and may be too large for a float)
        if ok and self.lo is not None:
            ok = value > self.lo if self.open_lo else value >= self.lo
        if ok and self.hi is not None:
            ok = value < self.hi if self.open_hi else value <= self.hi
        if not ok:
            out.append(f"{path} = {value!r} is not {self.expected()}")


class Text(Spec):
    """A string (``nonempty``: not ``""``)."""

    json_type = str

    def __init__(self, *, nonempty: bool = False, null: bool = False):
        self.nonempty, self.null = nonempty, null
        self.noun = "a non-empty string" if nonempty else "a string"

    def _check(self, value: Any, path: str, out: list[str]) -> None:
        if self.nonempty and not value:
            out.append(f"{path} = '' is not {self.expected()}")


class Flag(Spec):
    """``true`` or ``false``."""

    json_type = bool
    noun = "true or false"

    def __init__(self, *, null: bool = False):
        self.null = null


class Obj(Spec):
    """An object with known ``fields`` (those in ``required`` must be there); other keys must match ``extra``."""

    json_type = dict
    noun = "an object"

    def __init__(self, fields: Mapping[str, Spec], *, required: tuple = (), extra: Spec = ANY, null: bool = False):
        self.fields, self.required, self.extra, self.null = dict(fields), tuple(required), extra, null

    def _check(self, value: Any, path: str, out: list[str]) -> None:
        for key in self.required:
            if key not in value:
                out.append(f"{field_path(path, key)} is missing (expected {self.fields[key].expected()})")
        for key, item in value.items():
            self.fields.get(key, self.extra).check(item, field_path(path, key), out)


class Map(Spec):
    """An object of any keys (``key``: a test each key must pass, ``key_expected`` saying what it wants) whose
    values all match ``value``; ``noun`` words the whole (``"an object of strings"``)."""

    json_type = dict

    def __init__(
        self,
        value: Spec,
        *,
        key: Callable[[str], bool] | None = None,
        key_expected: str = "",
        noun: str = "an object",
        null: bool = False,
    ):
        self.value, self.key, self.key_expected, self.noun, self.null = value, key, key_expected, noun, null

    def _check(self, value: Any, path: str, out: list[str]) -> None:
        for key, item in value.items():
            if self.key is not None and not self.key(key):
                out.append(f"{path} key {key!r} is not {self.key_expected}")
            else:
                self.value.check(item, field_path(path, key), out)


class List(Spec):
    """A list whose items all match ``item``."""

    json_type = list
    noun = "a list"

    def __init__(self, item: Spec, *, null: bool = False):
        self.item, self.null = item, null

    def _check(self, value: Any, path: str, out: list[str]) -> None:
        for i, item in enumerate(value):
            self.item.check(item, field_path(path, i), out)


class Interval(Spec):
    """``[low, high]``: two numbers matching ``ends``, ordered ``low <= high``."""

    json_type = list

    def __init__(self, ends: Num, *, null: bool = False):
        self.ends, self.null = ends, null
        self.noun = f"[low, high] with low <= high, each {ends.expected()}"

    def _check(self, value: Any, path: str, out: list[str]) -> None:
        if len(value) != 2:
            out.append(f"{path} = {_short(value)} is not {self.noun}")
            return
        before = len(out)
        for i, end in enumerate(value):
            self.ends.check(end, field_path(path, i), out)
        if len(out) == before and value[0] > value[1]:
            out.append(f"{path} = {_short(value)} is not an interval: low > high")
