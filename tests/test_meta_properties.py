"""Property-based tests (hypothesis) of the meta-file and splits parsers: for any table, the reader either returns
exactly what the file says, or raises ProtocolFormatError naming the first line an independent validator (written
here, from the format's rules) finds wrong. Never another exception, never a silently changed pair count.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fiqa_bench.errors import ProtocolFormatError
from protocols._tables import first_duplicate_pair, read_table
from protocols.ijb import read_ijb_layout
from protocols.lfw import parse_pairs
from protocols.ytf import read_splits_text

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INT64 = st.integers(-(2**63), 2**63 - 1)
NAME = st.text(alphabet="abcXYZ019_-.", min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))


def _tmp() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="fiqa-prop-")


# ------------------------------------------------------------------------------------------ read_table
@SETTINGS
@given(
    rows=st.lists(st.tuples(NAME, INT64, INT64), min_size=1, max_size=30),
    sep=st.sampled_from([" ", "  ", "\t", " \t "]),
    eol=st.sampled_from(["\n", "\r\n"]),
    blank=st.booleans(),
)
def test_read_table_returns_what_the_file_says(rows, sep, eol, blank):
    text = eol.join(sep.join(map(str, r)) for r in rows) + eol
    if blank:
        text = eol + text + eol
    with _tmp() as d:
        path = Path(d) / "t.txt"
        path.write_bytes(text.encode())
        names, a, b = read_table(path, [("name", "str"), ("a", "int"), ("b", "int")])
    assert names.tolist() == [r[0] for r in rows]
    assert a.tolist() == [r[1] for r in rows] and b.tolist() == [r[2] for r in rows]


@SETTINGS
@given(
    rows=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1, max_size=20),
    at=st.integers(0, 19),
    big=st.one_of(st.integers(2**63, 10**30), st.integers(-(10**30), -(2**63) - 1)),
)
def test_read_table_names_the_line_of_an_id_beyond_int64(rows, at, big):
    at = at % len(rows)
    lines = [f"{x} {y}" for x, y in rows]
    lines[at] = f"{rows[at][0]} {big}"
    with _tmp() as d:
        path = Path(d) / "t.txt"
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(ProtocolFormatError) as err:
            read_table(path, [("a", "int"), ("b", "int32")])
    assert err.value.line == at + 1 and "64-bit" in err.value.reason


@SETTINGS
@given(data=st.binary(max_size=300))
def test_read_table_on_any_bytes_parses_or_names_a_line(data):
    with _tmp() as d:
        path = Path(d) / "t.txt"
        path.write_bytes(data)
        try:
            cols = read_table(path, [("name", "str"), ("a", "int"), ("x", "float")])
        except ProtocolFormatError as exc:
            assert str(path) in str(exc)
        else:
            assert len(cols) == 3 and len(cols[0]) == len(cols[1]) == len(cols[2]) >= 1


# ------------------------------------------------------------------------------------------ IJB pairs
def _first_bad_pair(pairs: list[tuple[int, int, int]]) -> tuple[int, str] | None:
    """Independent rules: the first self-pair, else the first pair repeating an earlier one in either order."""
    for i, (a, b, _) in enumerate(pairs):
        if a == b:
            return i, "paired with itself"
    seen = set()
    for i, (a, b, _) in enumerate(pairs):
        key = (min(a, b), max(a, b))
        if key in seen:
            return i, "already paired"
        seen.add(key)
    return None


@SETTINGS
@given(pairs=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(0, 1)), min_size=1, max_size=25))
def test_ijb_pairs_accepted_exactly_when_no_self_or_repeated_pair(pairs):
    with _tmp() as d:
        root = Path(d)
        (root / "meta").mkdir()
        (root / "meta" / "p_face_tid_mid.txt").write_text("".join(f"{t}.jpg {t} {t}\n" for t in range(1, 7)))
        (root / "meta" / "p_template_pair_label.txt").write_text("".join(f"{a} {b} {c}\n" for a, b, c in pairs))
        expected = _first_bad_pair(pairs)
        if expected is None:
            bench = read_ijb_layout(root, "p", "p", check_images=False)
            assert bench.pairs[["a", "b", "label"]].to_numpy().tolist() == [list(p) for p in pairs]
        else:
            with pytest.raises(ProtocolFormatError) as err:
                read_ijb_layout(root, "p", "p", check_images=False)
            assert err.value.line == expected[0] + 1 and expected[1] in err.value.reason


@SETTINGS
@given(a=st.lists(st.integers(-(2**40), 2**40), min_size=0, max_size=40), seed=st.integers(0, 2**32 - 1))
def test_first_duplicate_pair_matches_a_set_scan(a, seed):
    rng = np.random.default_rng(seed)
    a = np.asarray(a, dtype=np.int64)
    b = rng.choice(a, size=a.size) if a.size else a.copy()
    found = first_duplicate_pair(a, b)
    seen: dict[tuple[int, int], int] = {}
    expected = None
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist())):
        key = (min(x, y), max(x, y))
        if key in seen:
            expected = (i, seen[key])
            break
        seen[key] = i
    assert found == expected


# ------------------------------------------------------------------------------------------ YTF splits
VIDEO = st.sampled_from(["A/0", "A/1", "B/0", "B/1", "C/2", "../x", "A/..", "bad", "D/3"])


def _first_bad_split_line(rows) -> tuple[int, str] | None:
    """Independent rules, in the order a reader meets them: per line (split 1..10, pair >= 1, '<person>/<video>'
    without '.'/'..', same 0/1, (split, pair) once); then over the file: self-pairs and repeated video pairs."""
    seen = set()
    for i, (split, pair, v1, v2, same) in enumerate(rows):
        if split < 1:
            return i, ">= 1"
        if split > 10:
            return i, "1..10"
        if pair < 1:
            return i, ">= 1"
        for v in (v1, v2):
            parts = v.split("/")
            if len(parts) != 2:
                return i, "<person>/<video>"
            if "." in parts or ".." in parts:
                return i, "'..'"
        if same not in (0, 1):
            return i, "0 or 1"
        if (split, pair) in seen:
            return i, "already given"
        seen.add((split, pair))
    videos = set()
    for i, (_, _, v1, v2, _) in enumerate(rows):
        if v1 == v2:
            return i, "paired with itself"
        key = tuple(sorted((v1, v2)))
        if key in videos:
            return i, "already paired"
        videos.add(key)
    return None


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 12), st.integers(0, 4), VIDEO, VIDEO, st.integers(0, 2)), min_size=1, max_size=15
    ),
    eol=st.sampled_from(["\n", "\r\n"]),
)
def test_ytf_splits_accepted_exactly_when_valid(rows, eol):
    with _tmp() as d:
        path = Path(d) / "splits.txt"
        path.write_bytes("".join(f"{s}, {p}, {a}, {b}, {c}{eol}" for s, p, a, b, c in rows).encode())
        expected = _first_bad_split_line(rows)
        if expected is None:
            table = read_splits_text(path)
            assert len(table) == len(rows)  # no pair added or dropped
            assert set(table["fold"].tolist()) <= set(range(10))
            assert sorted(
                zip(table["fold"] + 1, table["pair"], table["video1"], table["video2"], table["label"])
            ) == sorted(rows)
        else:
            with pytest.raises(ProtocolFormatError) as err:
                read_splits_text(path)
            assert err.value.line == expected[0] + 1, (err.value, expected)
            assert expected[1] in err.value.reason, (err.value, expected)


# ------------------------------------------------------------------------------------------ LFW pairs
@SETTINGS
@given(
    same=st.lists(
        st.tuples(st.sampled_from(["Ann", "Bob"]), st.integers(1, 3), st.integers(1, 3)), min_size=1, max_size=6
    ),
    diff_seed=st.integers(0, 2**32 - 1),
)
def test_lfw_pairs_refuse_self_and_repeated_pairs(same, diff_seed):
    rng = np.random.default_rng(diff_seed)
    n = len(same)
    diff = [("Ann", int(rng.integers(1, 4)), "Bob", int(rng.integers(1, 4))) for _ in range(n)]
    lines = [f"1 {n}", *(f"{a} {x} {y}" for a, x, y in same), *(f"{a} {x} {b} {y}" for a, x, b, y in diff)]
    refs = [((a, x), (a, y)) for a, x, y in same] + [((a, x), (b, y)) for a, x, b, y in diff]
    expected = None
    seen: dict = {}
    for i, (p, q) in enumerate(refs):
        key = (min(p, q), max(p, q))
        if p == q:
            expected = (i, "paired with itself")
            break
        if key in seen:
            expected = (i, f"already paired on line {seen[key] + 2}")
            break
        seen[key] = i
    with _tmp() as d:
        path = Path(d) / "pairs.txt"
        path.write_text("\n".join(lines) + "\n")
        if expected is None:
            parsed = parse_pairs(path)
            assert len(parsed.a) == 2 * n
        else:
            with pytest.raises(ProtocolFormatError) as err:
                parse_pairs(path)
            assert err.value.line == expected[0] + 2 and expected[1] in err.value.reason
