"""The results store: how every reader (report, leaderboard, compare, rescore) gets runs out of results files.

One loader (:func:`load_runs`: given files, or folders searched for ``*.json``; the ``.npz`` beside each when the
reader needs it), one loaded-run type (:class:`LoadedRun`), one comparability key (:func:`comparable_key`), one
method label (:func:`method_label`) and one null reason (:func:`null_reason`), so the three writers cannot drift
apart. A results file is untrusted input (leaderboards take files from outside authors): it is validated field by
field once, where it is loaded (:func:`fiqa_bench.results.record.validate`), and readers trust what they read.

A bad results file -- not JSON, a field of the wrong type or out of range, an unknown schema version -- is an error
naming the file and the field (:class:`~fiqa_bench.errors.BadResultsFile`), or, given ``on_bad``, is handed to it
as one :class:`Skipped` and left out while the rest loads. The CLI passes ``on_bad``: it prints
``skipped x.json: <field> ...`` for each such file and ``N results files skipped`` at the end, and exits 0 when
something valid remains (2, as for any data error, when nothing does). JSON files that are no results file at all
(no ``schema_version`` and no ``metrics``: notes, configs) are left out with a warning, as are ``costs.json`` files
(read by :mod:`fiqa_bench.writers.costs`) and per-group files ``*.groups.json`` (:mod:`fiqa_bench.results.groups_file`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fiqa_bench.errors import BadResultsFile, FiqaBenchError
from fiqa_bench.results.groups_file import GROUPS_SUFFIX
from fiqa_bench.results.record import RunRecord, raw_path, read_raw, read_results_json
from fiqa_bench.writers.costs import COSTS_FILE

__all__ = [
    "Skipped",
    "LoadedRun",
    "load_runs",
    "load_file",
    "json_files",
    "comparable_key",
    "pairing_key",
    "selection_label",
    "method_label",
    "options_text",
    "option_value",
    "null_reason",
]


@dataclass(frozen=True)
class Skipped:
    """A results file left out, and why (the field at fault)."""

    path: Path
    reason: str

    def line(self) -> str:
        return f"skipped {self.path}: {self.reason}"


OnBad = Callable[[Skipped], None]


def _left_out(path: Path, reason: str, on_bad: OnBad | None, *, warn: bool) -> None:
    """A file that is left out: to ``on_bad`` when given; else a warning (``warn``: unreadable, not regular) or
    :class:`BadResultsFile` (a results file that breaks the schema)."""
    if on_bad is not None:
        on_bad(Skipped(path, reason))
    elif warn:
        warnings.warn(f"{path}: {reason}; skipped", stacklevel=3)
    else:
        raise BadResultsFile(path, reason)


@dataclass(eq=False)
class LoadedRun:
    """One run as every reader sees it: where it was read, its validated record, and its raw arrays (the ``.npz``
    beside it, read and checked against the record's sha256 on first use). ``suffix`` tells apart two runs of one
    method variant in a comparison (another seed)."""

    path: Path
    record: RunRecord
    raw_data: dict | None = None
    suffix: str = ""

    @classmethod
    def from_json(cls, obj: Any, path: str | Path) -> LoadedRun:
        """Validate a parsed results file; raises :class:`BadResultsFile` naming the first bad field."""
        try:
            return cls(Path(path), RunRecord.from_json(obj, str(path)))
        except RecursionError:
            raise BadResultsFile(path, "nested too deeply to be a results file") from None

    @property
    def source(self) -> str:
        return str(self.path)

    @property
    def has_raw(self) -> bool:
        return self.raw_data is not None or raw_path(self.path).is_file()

    @property
    def raw(self) -> dict:
        if self.raw_data is None:
            self.raw_data = read_raw(self.path, self.record)
        return self.raw_data

    @property
    def label(self) -> str:
        return method_label(self.record) + self.suffix


def json_files(root: Path, *, exclude: Path | None = None, on_bad: OnBad | None = None) -> list[Path]:
    """Every ``*.json`` under ``root``, sorted; hidden folders and ``exclude`` (e.g. a site written inside the
    folder) are not searched, and a non-regular file is left out (reading a FIFO named ``x.json`` would block)."""
    skip = Path(exclude).resolve() if exclude is not None else None
    out = []
    for path in sorted(Path(root).rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if skip is not None and (path.resolve() == skip or skip in path.resolve().parents):
            continue
        if not path.is_file():
            _left_out(path, "not a regular file", on_bad, warn=True)
            continue
        out.append(path)
    return out


def load_file(path: Path, *, on_bad: OnBad | None = None) -> LoadedRun | None:
    """The run in one results file, or None when it is left out (see the module's docstring)."""
    try:
        obj = read_results_json(path)
    except BadResultsFile as exc:
        _left_out(path, exc.problem, on_bad, warn=True)
        return None
    if not (isinstance(obj, dict) and ("schema_version" in obj or "metrics" in obj)):
        warnings.warn(f"{path}: not a fiqa-bench results file (no schema_version/metrics); skipped", stacklevel=2)
        return None
    try:
        return LoadedRun.from_json(obj, path)
    except BadResultsFile as exc:
        _left_out(path, exc.problem, on_bad, warn=False)
        return None


def _raw_loads(run: LoadedRun, on_bad: OnBad | None) -> bool:
    """Whether the run's ``.npz`` reads and matches its record; a bad one makes the run a bad file."""
    try:
        _ = run.raw  # the property reads the .npz and checks it against the record
    except FiqaBenchError as exc:
        if on_bad is None:
            raise
        on_bad(Skipped(run.path, str(exc)))
        return False
    return True


def load_runs(
    paths: Iterable[str | Path], *, on_bad: OnBad | None = None, require_raw: bool = False, exclude: Path | None = None
) -> list[LoadedRun]:
    """The runs in ``paths`` (results files, or folders searched recursively), each file once, in order.

    ``require_raw``: every run comes with its ``.npz`` (compare): a valid results file without one in a folder is
    no run to load (a copy without raw data), and a given file without one, or any with one that does not read or
    match, is a bad file. Every results file is validated either way, so a bad one is named by every command."""
    seen: set[Path] = set()
    runs = []
    for given in map(Path, paths):
        if given.is_dir():
            files = [
                f
                for f in json_files(given, exclude=exclude, on_bad=on_bad)
                if f.name != COSTS_FILE and not f.name.endswith(GROUPS_SUFFIX)
            ]
        elif given.exists():
            files = [given]
        else:
            raise FiqaBenchError(f"{given}: no such results file or folder")
        for f in files:
            if f in seen:
                continue
            seen.add(f)
            run = load_file(f, on_bad=on_bad)
            if run is None or (require_raw and given.is_dir() and not raw_path(f).is_file()):
                continue
            if not require_raw or _raw_loads(run, on_bad):
                runs.append(run)
    return runs


# ------------------------------------------------------------------------------------------ keys and labels


def selection_label(record: RunRecord) -> str:
    """``top1``, ``topk-k3``, ``all``...: the selection as results file names spell it."""
    sel, k = record.config["selection"], record.config.get("k")
    return f"{sel}-k{int(k)}" if sel == "topk" and isinstance(k, int) else sel


def comparable_key(record: RunRecord) -> tuple[str, ...]:
    """What must be equal for two runs' numbers to stand side by side (a leaderboard board, a report table, a
    comparison): the protocol with its version and its pair and face lists, the FR backbone with its weights, and
    the selection."""
    p, b = record.protocol, record.backbone
    return (
        p["name"],
        p["version"],
        p.get("pairs_sha256") or "",
        p.get("faces_sha256") or "",
        b["name"],
        b.get("weights_sha256") or "",
        selection_label(record),
    )


#: Settings two runs compared resample by resample may differ in: the method, its options and its seed.
METHOD_SETTINGS = ("method", "method_options", "seed")


def pairing_key(record: RunRecord) -> tuple[str, ...]:
    """Runs that ``compare`` pairs: comparable, and equal in every setting but the method's."""
    rest = sorted((k, v) for k, v in record.settings.items() if k not in METHOD_SETTINGS)
    return comparable_key(record) + (repr(rest),)


def option_value(key: str, value: Any, files: Mapping[str, str]) -> str:
    """An option as a label shows it: a file (an option whose sha256 is recorded, or a path) by its base name, so no
    label carries the path of the machine a run was made on."""
    text = str(value)
    if key in files or "/" in text or "\\" in text:
        return Path(text.replace("\\", "/")).name or text
    return text


def options_text(
    options: Mapping[str, Any], files: Mapping[str, str], keys: Iterable[str] | None = None, with_sha256: bool = False
) -> str:
    """``key=value, ...`` of a method's options (``keys``: only these), sorted; files by base name, followed by
    their sha256 prefix when ``with_sha256``."""
    parts = []
    for key in sorted(options) if keys is None else [k for k in keys if k in options]:
        text = f"{key}={option_value(key, options[key], files)}"
        if with_sha256 and key in files:
            text += f" (sha256 {files[key][:12]})"
        parts.append(text)
    return ", ".join(parts)


def method_label(record: RunRecord, keys: Iterable[str] | None = None, tag: str = "") -> str:
    """``name[tag] [key=value, ...]``: the method and its options (``keys``: only those), e.g.
    ``tinyfq [weights=tinyfq-none.onnx]``."""
    method = record.method
    text = options_text(method.get("options") or {}, method.get("options_sha256") or {}, keys)
    return method["name"] + tag + (f" [{text}]" if text else "")


def null_reason(record: RunRecord, key: str, short: str) -> str:
    """Why the headline column ``short`` of metric ``key`` is null in a run (the metric's declaration says)."""
    from fiqa_bench.metrics.base import get_metric

    return get_metric(key).null_reason(record.metrics.get(key), short, record.counts)
