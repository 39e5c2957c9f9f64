"""Declared metrics: what a metric needs, how it is computed, formatted and compared — declared once.

A metric is a :class:`Metric` object registered under its key in the entry-point group ``fiqa_bench.metrics`` (the
built-ins as ``edc_fnm = "fiqa_bench.metrics.edc_fnm:METRIC"``, exactly as another package registers its own). The
runner, the CLI summary, ``rescore`` and the report loop over the keys a protocol's card lists
(``ProtocolCard.metrics``) instead of branching on names. Every metric is computed from :class:`PairData` alone —
the arrays kept in the ``.npz`` beside each results file — so any number can be recomputed and checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fiqa_bench.results.fields import Flag, Interval, Map, Num, Obj, Spec, Text, field_path

__all__ = [
    "Column",
    "Metric",
    "MetricOption",
    "MetricOptions",
    "PairData",
    "PairWorth",
    "declared_options",
    "get_metric",
    "pair_worth",
]

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class MetricOption:
    """A setting that changes a metric's values, declared with the metric (:attr:`Metric.options`): the one place its
    type, default, help, command-line spelling and range live. ``fiqa-bench run`` gets an option from it, the results
    file records it in ``config`` under ``name``, the file name's digest covers it (at ``digest``, a path in the
    settings; default ``("metric_options", name)``), ``rescore`` reads it back and reports label runs that differ in
    it. Several metrics may share one option object (the EDC family shares its pair quality)."""

    name: str
    default: Any
    help: str
    flag: str = ""  # default: --NAME with dashes
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    digest: tuple = ()
    # in the settings (the file name's digest) of every run, also of a protocol that reports no metric declaring it
    # (the built-in metrics' options, so that results files keep their names); else only of the runs that report a
    # metric declaring it: installing a metric never renames the results of protocols that do not report it
    every_run: bool = False

    def __post_init__(self) -> None:
        if not _KEY.match(self.name):
            raise ValueError(f"metric option {self.name!r} must be lower-case snake case")

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def digest_path(self) -> tuple:
        return tuple(self.digest) or ("metric_options", self.name)

    @property
    def type(self) -> type:
        return type(self.default)

    def spec(self) -> Spec:
        """What a results file's ``config`` may hold under :attr:`name` (its type and range; read by
        :func:`fiqa_bench.results.record.validate`)."""
        if self.type is bool:
            return Flag()
        if self.type in (int, float):
            return Num(self.min, self.max, integer=self.type is int)
        return Text()

    def parse(self, value: Any) -> Any:
        """``value`` (a string from the command line or a results file's recorded value) as this option's type, checked
        against its choices and range; ValueError names the option."""
        typed: Any
        try:
            typed = self.type(value) if not isinstance(value, self.type) or isinstance(value, bool) else value
        except (TypeError, ValueError):
            raise ValueError(f"{self.cli_flag}: expected a {self.type.__name__}, got {value!r}") from None
        if self.choices is not None and typed not in self.choices:
            raise ValueError(f"{self.cli_flag} must be one of {', '.join(map(str, self.choices))}, got {typed!r}")
        if self.min is not None and typed < self.min:
            raise ValueError(f"{self.cli_flag} must be >= {self.min}, got {typed}")
        if self.max is not None and typed > self.max:
            raise ValueError(f"{self.cli_flag} must be <= {self.max}, got {typed}")
        return typed


def declared_options() -> dict[str, MetricOption]:
    """Every option the registered metrics declare, by name (a metric that fails to load is reported by
    ``fiqa-bench list``, not here). Two metrics declaring one name must declare the same option."""
    from fiqa_bench import registry
    from fiqa_bench.errors import FiqaBenchError

    found: dict[str, MetricOption] = {}
    for key in registry.names("metric"):
        try:
            metric = registry.load_class("metric", key)
        except FiqaBenchError:
            continue
        for option in getattr(metric, "options", ()):
            if found.setdefault(option.name, option) != option:
                raise ValueError(f"metric option {option.name!r} is declared twice, differently ({key!r})")
    return found


class MetricOptions:
    """The values of every declared metric option (:func:`declared_options`), the defaults where not given; read as
    attributes (``options.fnm_start``). Immutable and hashable; :meth:`as_dict` is what records and keys use."""

    __slots__ = ("_values",)

    def __init__(self, **values: Any) -> None:
        declared = declared_options()
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise TypeError(f"unknown metric option(s) {', '.join(unknown)}; declared: {', '.join(sorted(declared))}")
        full = {name: option.default for name, option in declared.items()}
        full.update({name: declared[name].parse(v) for name, v in values.items()})
        object.__setattr__(self, "_values", dict(sorted(full.items())))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no metric option {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("MetricOptions is immutable")

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def replace(self, **changes: Any) -> MetricOptions:
        """A copy with ``changes`` (like :func:`dataclasses.replace`)."""
        return MetricOptions(**{**self._values, **changes})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricOptions) and self._values == other._values

    def __hash__(self) -> int:
        return hash(tuple(self._values.items()))

    def __repr__(self) -> str:
        return "MetricOptions(" + ", ".join(f"{k}={v!r}" for k, v in self._values.items()) + ")"

    def __reduce__(self):
        return (_metric_options, (self._values,))


def _metric_options(values: dict) -> MetricOptions:
    return MetricOptions(**values)


@dataclass
class PairData:
    """The comparisons a run measured: one entry per scored pair.

    ``scores`` (float32 cosine), ``labels`` (1 genuine, 0 impostor), ``folds`` (k-fold protocols; -1 otherwise),
    ``quality`` (the pair quality EDC uses, from the qualities of the two sides' kept images; NaN when the run had
    no quality method), ``a``/``b`` the two sides' group ids and ``subject_a``/``subject_b`` their subjects
    (integer codes: what a bootstrap over identities resamples)."""

    scores: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    quality: np.ndarray
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    subject_a: np.ndarray | None = None
    subject_b: np.ndarray | None = None
    quality_codes: np.ndarray | None = None  # optional integer levels ordered like ``quality`` (a speed shortcut)

    @property
    def n_genuine(self) -> int:
        return int((self.labels == 1).sum())

    @property
    def n_impostor(self) -> int:
        return int((self.labels == 0).sum())

    @property
    def has_quality(self) -> bool:
        return self.quality.shape[0] > 0 and bool(np.isfinite(self.quality).all())


#: How a value's bootstrap intervals were made (:mod:`fiqa_bench.pipeline.uncertainty`), on every metric that has them.
BOOTSTRAP = Obj(
    {
        "B": Num(0, integer=True),
        "level": Num(0, 1, open_lo=True, open_hi=True),
        "method": Text(),
        "unit": Text(),
        "seed": Num(integer=True),
        "weights": Text(),
        "valid_replicates": Map(Num(0, integer=True)),
    }
)


def fraction_key(key: str) -> bool:
    """A key like ``'1e-3'`` or ``'0.20'``: an FPR target or a discard limit in (0, 1]."""
    try:
        return 0 < float(key) <= 1
    except ValueError:
        return False


Column = tuple[str, Any]  # (column title, headline value: a number or None)


@dataclass(frozen=True)
class PairWorth:
    """What one comparison is worth in a metric's headline numbers: ``100 / n`` points, ``n`` the sum of the run's
    ``counts`` named here (TPR: the genuine pairs; accuracy: all pairs). Reports, comparisons and the leaderboard
    print it beside the pair counts (``one genuine pair = 0.13 TPR points``)."""

    counts: tuple  # keys of a results file's counts, e.g. ("genuine",)
    pair: str  # what one of them is called: "genuine pair"
    of: str  # what the points are points of: "TPR"
    digits: int = 2  # decimals of the points in reports and comparisons

    def total(self, counts: Mapping) -> int:
        return int(sum(int(counts.get(k) or 0) for k in self.counts))

    def text(self, counts: Mapping) -> str | None:
        """``one genuine pair = 0.13 TPR points`` (None without such pairs)."""
        n = self.total(counts)
        return f"one {self.pair} = {100 / n:.{self.digits}f} {self.of} points" if n > 0 else None

    def as_dict(self) -> dict:
        return {"counts": list(self.counts), "pair": self.pair, "of": self.of}


def pair_worth(keys) -> PairWorth | None:
    """The worth of one comparison in the first of the metrics ``keys`` (registered keys, display order) that
    declares one (:attr:`Metric.worth`); None when none does."""
    for key in keys:
        worth = get_metric(key).worth
        if worth is not None:
            return worth
    return None


@dataclass(frozen=True)
class Metric:
    """One metric, declared.

    * ``key``: its key under ``metrics`` in the results file and its module name;
    * ``needs``: what of :class:`PairData` it reads (``scores``, ``labels``, ``folds``, ``quality``); a run whose data
      lacks one gets ``None`` with ``unavailable`` as the reason;
    * ``compute(data, options) -> dict``: the value recorded in the results file (JSON-ready);
    * ``columns(value) -> [(short name, number or None)]``: the headline numbers of a table/summary, in display
      order; a column's full title is ``label + joiner + short name`` (``TPR@FPR=1e-3``, ``FNM-EDC pAUC@0.20``);
    * ``higher_is_better``: the direction of every headline number;
    * ``scale``/``digits``: how a headline number is shown (100 and 2: percent);
    * ``bounds``: the range of every headline number (and of its interval's ends), ``value_fields``/``required``:
      the other fields of a recorded value (:mod:`fiqa_bench.results.fields` specs) -- what :meth:`check` holds an
      untrusted results file to, so that no reader meets a string where a number belongs;
    * ``why_null(value, short, counts)``: why a headline column is null when the value says more than
      "unavailable" (None: no more to say), the one source of the reason reports and leaderboards print;
    * what the writers show besides the numbers (all optional): ``header`` the report's column heading
      (``str.format`` of ``short``; default: the column title, unit and direction), ``spread`` a field of the value
      shown as ``± x`` after the number in report cells (accuracy's ``std``), ``column_order`` a sort key of short
      names when one table's runs have different columns, ``worth`` what one comparison is worth
      (:class:`PairWorth`), ``table_note(configs)`` a line for a report table from its runs' recorded configs;
    * ``figure(runs, folder, stem) -> [png, svg]``: a figure of its own that reports draw beside the built-in ones
      for the runs of a table that report it (``runs``: (row label, raw arrays of the ``.npz``, recorded value));
    * ``replicate(draw, shorts, options)``: a fast path of the bootstrap, the headline values on one weighted
      resample (:class:`fiqa_bench.metrics.resample.Draw`), or None to have the resample written out and
      ``compute`` called on it (the default, exact and slower).
    """

    key: str
    title: str
    label: str
    needs: frozenset
    higher_is_better: bool
    compute: Callable[[PairData, MetricOptions], dict]
    columns: Callable[[dict], list]
    scale: float = 100.0
    digits: int = 2
    unit: str = "%"
    description: str = ""
    joiner: str = "@"
    tags: tuple = field(default_factory=tuple)
    options: tuple = ()  # the MetricOption settings that change its values
    # the text after the label in a run's printed summary, from the value and a formatter of one column
    # ((short name, number) -> "97.04% [95.22, 98.63]"); None: every column as short=value
    summary: Callable[[dict, Callable[[str, Any], str]], str] | None = field(default=None, hash=False, compare=False)
    bounds: tuple = (None, None)
    value_fields: Mapping[str, Spec] = field(default_factory=dict, hash=False, compare=False)
    required: tuple = ()
    why_null: Callable[[dict, str, Mapping], str | None] | None = field(default=None, hash=False, compare=False)
    header: str = ""
    spread: str = ""
    column_order: Callable[[str], Any] | None = field(default=None, hash=False, compare=False)
    worth: PairWorth | None = None
    table_note: Callable[[list], str | None] | None = field(default=None, hash=False, compare=False)
    replicate: Callable[[Any, list, MetricOptions], dict | None] | None = field(default=None, hash=False, compare=False)
    figure: Callable[[list, Any, str], list] | None = field(default=None, hash=False, compare=False)

    def headline(self, value: dict | None) -> list:
        """[(full column title, number or None)] of a recorded value (empty when unavailable)."""
        if not isinstance(value, dict) or "unavailable" in value:
            return []
        return [(f"{self.label}{self.joiner}{short}", v) for short, v in self.columns(value)]

    def headline_intervals(self, value: dict | None) -> dict:
        """{full column title: [low, high] or None} of a recorded value's bootstrap intervals ({} without them)."""
        if not isinstance(value, dict) or "unavailable" in value:
            return {}
        intervals = value.get("intervals") or {}
        return {f"{self.label}{self.joiner}{short}": intervals.get(short) for short, _ in self.columns(value)}

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f"metric key {self.key!r} must be lower-case snake case")

    def unavailable(self, data: PairData) -> str | None:
        """Why this metric cannot be computed on ``data`` (None when it can)."""
        if "quality" in self.needs and not data.has_quality:
            return "no quality method in this run (EDC needs a quality score per comparison)"
        if "folds" in self.needs and not (data.folds.shape[0] and (data.folds >= 0).all()):
            return "not a k-fold protocol"
        if "labels" in self.needs and (data.n_genuine == 0 or data.n_impostor == 0):
            return f"needs genuine and impostor pairs ({data.n_genuine} genuine, {data.n_impostor} impostor)"
        return None

    def measure(self, data: PairData, options: MetricOptions) -> dict:
        """The recorded value, or ``{"value": None, "reason": ...}`` when the data cannot give it."""
        why = self.unavailable(data)
        if why is not None:
            return {"unavailable": why}
        return self.compute(data, options)

    def check(self, value: Any, path: str) -> list[str]:
        """Problems of a recorded value read from a results file ([] when every reader can use it): its declared
        fields, its intervals and bootstrap, then each headline column a number in ``bounds`` or null."""
        out: list[str] = []
        if isinstance(value, dict) and "unavailable" in value:
            Text(nonempty=True).check(value["unavailable"], field_path(path, "unavailable"), out)
            return out
        spec = Obj(
            {**self.value_fields, "intervals": Map(Interval(Num(*self.bounds), null=True)), "bootstrap": BOOTSTRAP},
            required=self.required,
        )
        spec.check(value, path, out)
        if not out:  # the columns are read only from a value of the declared shape
            column = Num(*self.bounds, null=True)
            for short, number in self.columns(value):
                column.check(number, field_path(path, short), out)
        return out

    def null_reason(self, value: Any, short: str, counts: Mapping) -> str:
        """Why the headline column ``short`` of a recorded value is null."""
        if isinstance(value, dict) and value.get("unavailable"):
            return str(value["unavailable"])
        if isinstance(value, dict) and self.why_null is not None:
            reason = self.why_null(value, short, counts)
            if reason:
                return reason
        return f"{self.label}{self.joiner}{short} could not be measured in this run"

    def format(self, value: Any) -> str:
        if value is None:
            return "—"
        return f"{self.scale * float(value):.{self.digits}f}"

    def short_of(self, title: str) -> str:
        """The short name of a full column title (``TPR@FPR=1e-3`` -> ``1e-3``)."""
        return title[len(self.label + self.joiner) :]

    def table_header(self, short: str) -> str:
        """The report's heading of the headline column ``short``."""
        if self.header:
            return self.header.format(short=short)
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.label}{self.joiner}{short}{unit} {'↑' if self.higher_is_better else '↓'}"

    def table_cell(self, value: Mapping, number: Any) -> str:
        """A report cell: the formatted number, and ``± spread`` where the metric declares one."""
        text = self.format(number)
        if self.spread:
            spread = value.get(self.spread)
            text += f" ± {self.format(spread)}" if spread is not None else ""
        return text


#: Metrics resolved so far, by (key, import path): the evaluation asks for a metric by key thousands of times (every
#: bootstrap replicate); after :func:`resolve_metrics` those calls read this table, never the registry.
_resolved: dict[tuple[str, tuple[str, ...]], Metric] = {}


def _lookup(key: str) -> Metric:
    from fiqa_bench import registry
    from fiqa_bench.errors import FiqaBenchError

    if not _KEY.match(str(key)):
        raise KeyError(f"not a metric key: {key!r}")
    try:
        metric = registry.load_class("metric", key)
    except FiqaBenchError as exc:
        raise KeyError(str(exc)) from exc
    if not isinstance(metric, Metric) or metric.key != key:
        raise KeyError(
            f"metric {key!r} is registered as {registry.entries('metric')[key].target}, which is not a "
            f"Metric declared with key {key!r}"
        )
    return metric


def resolve_metrics(keys) -> dict[str, Metric]:
    """Each key's declared metric, looked up in the registry now (a run resolves its protocol's metrics once, before
    the evaluation); :func:`get_metric` then serves them from the resolved table."""
    import sys

    path = tuple(sys.path)
    out = {key: _lookup(key) for key in keys}
    _resolved.update({(key, path): metric for key, metric in out.items()})
    return out


def get_metric(key: str) -> Metric:
    """The declared metric registered as ``key`` (entry-point group ``fiqa_bench.metrics``): from the resolved table
    when :func:`resolve_metrics` (or an earlier call on the same import path) resolved it, else from the registry."""
    import sys

    path = tuple(sys.path)
    hit = _resolved.get((key, path))
    if hit is None:
        hit = _resolved[(key, path)] = _lookup(key)
    return hit
