"""Usage errors are one line, exit code 2, no traceback, for every command (issue 22, item 4), and every summary in
``--help`` is a whole sentence (item 5).

The cases are built by walking the click group (``main.commands``, recursing into groups) and reading each command's
parameters, so a command or an option added later is covered without touching this file: each command with no
arguments, with each required parameter left out in turn (the others given valid values), with an unknown option,
and with a malformed value for each typed parameter (a non-number for a number, a value outside a range or a choice,
a path that is not there, a file where a folder is wanted and the reverse). A few real subprocesses check
``fiqa-bench run`` as the issue met it.

The one-line format: ``error: fiqa-bench COMMAND: message`` on stderr (``error: fiqa-bench: message`` for the root
group), nothing on stdout, exit code 2.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fiqa_bench.cli.main import main

FILE, DIR, MISSING, NEW = "<file>", "<dir>", "<missing>", "<new>"  # placeholders, made real paths per test


def _walk(group: click.Group = main, path: tuple[str, ...] = ()):
    """(path, command) for the root group and every command below it, groups included."""
    yield path, group
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _walk(cmd, path + (name,))
        else:
            yield path + (name,), cmd


def _numeric_value(t: click.ParamType) -> str:
    """A valid value of a number type: inside its range, if it has one."""
    if isinstance(t, (click.IntRange, click.FloatRange)):
        if t.min is not None:
            return str(t.min + (1 if t.min_open else 0))
        if t.max is not None:
            return str(t.max - (1 if t.max_open else 0))
    return "1"


def _valid(param: click.Parameter) -> str:
    """A value of ``param`` that passes click's conversion (the command is never run with it: another parameter is
    missing or malformed)."""
    t = param.type
    if isinstance(t, click.Path):
        if not t.exists:
            return NEW
        return DIR if not t.file_okay else FILE
    if isinstance(t, click.Choice):
        return str(t.choices[0])
    if isinstance(t, (click.types.IntParamType, click.types.FloatParamType)):
        return _numeric_value(t)
    return "x"


def _malformed(param: click.Parameter) -> list[tuple[str, str]]:
    """(label, value) pairs that click must refuse for ``param``'s type."""
    t = param.type
    out: list[tuple[str, str]] = []
    if isinstance(t, click.Path):
        if t.exists:
            out.append(("missing-path", MISSING))
        if not t.file_okay:
            out.append(("file-for-folder", FILE))
        if not t.dir_okay:
            out.append(("folder-for-file", DIR))
    elif isinstance(t, click.Choice):
        out.append(("not-a-choice", "no-such-choice"))
    elif isinstance(t, (click.types.IntParamType, click.types.FloatParamType)):
        out.append(("not-a-number", "many"))
        if isinstance(t, click.types.IntParamType) and not isinstance(t, (click.IntRange, click.FloatRange)):
            out.append(("not-an-integer", "1.5"))
        if isinstance(t, (click.IntRange, click.FloatRange)):
            step = 1 if isinstance(t, click.types.IntParamType) else 0.5
            if t.min is not None:
                out.append(("below-range", str(t.min if t.min_open else t.min - step)))
            if t.max is not None:
                out.append(("above-range", str(t.max if t.max_open else t.max + step)))
    return out


def _given(cmd: click.Command, values: dict[str, str]) -> list[str]:
    """Command-line arguments giving each parameter named in ``values`` (options first, then the arguments)."""
    opts: list[str] = []
    args: list[str] = []
    for p in cmd.params:
        if p.name not in values:
            continue
        if isinstance(p, click.Argument):
            args.append(values[p.name])
        else:
            opts += [p.opts[0], values[p.name]]
    return opts + args


def _label(p: click.Parameter) -> str:
    return max(p.opts, key=len) if isinstance(p, click.Option) else p.human_readable_name


def _required(cmd: click.Command) -> list[click.Parameter]:
    return [p for p in cmd.params if p.required]


def _cases():
    cases = []
    for path, cmd in _walk():
        name = " ".join(path) or "(root)"
        runnable_bare = not isinstance(cmd, click.Group) and not _required(cmd)
        cases.append(pytest.param(path, [], None, 0 if runnable_bare else 2, id=f"{name}: no arguments"))
        cases.append(pytest.param(path, ["--no-such-option"], "'--no-such-option'", 2, id=f"{name}: unknown option"))
        if isinstance(cmd, click.Group):
            cases.append(pytest.param(path, ["no-such-command"], "'no-such-command'", 2, id=f"{name}: unknown command"))
            continue
        valid = {p.name: _valid(p) for p in _required(cmd)}
        for p in _required(cmd):
            others = {k: v for k, v in valid.items() if k != p.name}
            cases.append(pytest.param(path, _given(cmd, others), p, 2, id=f"{name}: without {_label(p)}"))
        for p in cmd.params:
            for label, bad in _malformed(p):
                cases.append(
                    pytest.param(path, _given(cmd, {**valid, p.name: bad}), p, 2, id=f"{name}: {_label(p)} {label}")
                )
    return cases


CASES = _cases()


def _real(args: list[str], tmp_path: Path) -> list[str]:
    paths = {FILE: tmp_path / "a-file.txt", DIR: tmp_path, MISSING: tmp_path / "not-there", NEW: tmp_path / "new"}
    paths[FILE].write_text("x")
    return [str(paths[a]) if a in paths else a for a in args]


def _hint(path: tuple[str, ...], param: click.Parameter) -> str:
    """How click names ``param`` in its messages: ``'--fr'``, ``'--protocol' / '-p'``, ``'SOURCES...'``."""
    cmd = main
    ctx = click.Context(main, info_name="fiqa-bench")
    for name in path:
        cmd = cmd.commands[name]
        ctx = click.Context(cmd, info_name=name, parent=ctx)
    return param.get_error_hint(ctx)


def test_the_walk_covers_every_command_and_many_cases():
    names = {" ".join(path) for path, _ in _walk()}
    assert {
        "",
        "list",
        "run",
        "rescore",
        "compare",
        "report",
        "leaderboard",
        "prepare",
        "label",
        "train",
        "train-baseline",
        "train-baseline data",
        "train-baseline svm",
        "train-baseline rqs",
        "train-baseline faceqnet",
        "train-baseline evaluate",
    } <= names
    ids = [c.id for c in CASES]
    for must in (
        "run: no arguments",
        "run: without --fr",
        "run: without --protocol",
        "run: --batch-size not-a-number",
        "run: --batch-size below-range",
        "label: without SOURCES",
        "rescore: RESULTS missing-path",
        "train-baseline: no arguments",
        "train-baseline svm: --C not-a-number",
    ):
        assert must in ids, must
    assert len(CASES) > 150


@pytest.mark.parametrize("path, args, named, code", CASES)
def test_usage_error_is_one_line_exit_2(path, args, named, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `list` with no arguments really runs (and writes nothing)
    res = CliRunner().invoke(main, [*path, *_real(args, tmp_path)])
    assert "Traceback" not in res.output, res.output
    assert res.exit_code == code, (res.exit_code, res.output)
    if code == 0:
        assert res.stdout.strip()
        return
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.stdout == "", res.stdout
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    line = lines[0]
    where = "fiqa-bench" + "".join(f" {p}" for p in path)
    assert line.startswith(f"error: {where}: "), line
    if isinstance(named, click.Parameter):
        named = _hint(path, named)
    if named:
        assert named in line, (named, line)


def test_a_group_without_a_command_names_its_commands():
    res = CliRunner().invoke(main, ["train-baseline"])
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: fiqa-bench train-baseline: missing a command (data, evaluate, faceqnet, "
        "rqs, svm); `fiqa-bench train-baseline --help` says what each does."
    )
    res = CliRunner().invoke(main, ["-v"])  # options of the root group but no command: the same one line
    assert (
        res.exit_code == 2
        and res.stderr.startswith("error: fiqa-bench: missing a command (")
        and len(res.stderr.strip().splitlines()) == 1
    )


def test_a_missing_option_says_what_it_is():
    res = CliRunner().invoke(main, ["run", "--method", "tinyfq", "--protocol", "lfw-templates"])
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: fiqa-bench run: Missing option '--fr' (FR backbone: dlib, r50, r100, mbf or onnx:PATH)."
    )


def test_prepare_impostors_is_all_or_a_count():
    base = ["prepare", "a", "b", "--name", "n"]
    for bad in ("some", "0", "-3", "2.5"):
        res = CliRunner().invoke(main, [*base, "--impostors", bad])
        assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
        assert res.stderr.startswith(
            f"error: fiqa-bench prepare: Invalid value for '--impostors': '{bad}' is "
            "neither 'all' nor a positive integer."
        ), res.stderr


def _command() -> list[str]:
    script = Path(sys.executable).with_name("fiqa-bench")  # the console script a user runs, where installed
    return [str(script)] if script.is_file() else [sys.executable, "-m", "fiqa_bench"]


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "Missing option '--protocol' / '-p' (Protocol name"),
        (["--method", "tinyfq", "--protocol", "lfw-templates"], "Missing option '--fr' (FR backbone"),
        (["--method", "tinyfq", "--fr", "dlib"], "Missing option '--protocol' / '-p'"),
        (
            ["--method", "tinyfq", "--fr", "dlib", "--protocol", "lfw-templates", "--batch-size", "many"],
            "Invalid value for '--batch-size': 'many' is not a valid integer.",
        ),
    ],
    ids=["bare", "without --fr", "without --protocol", "bad --batch-size"],
)
def test_fiqa_bench_run_as_the_issue_met_it(args, message, tmp_path):
    res = subprocess.run([*_command(), "run", *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and res.stdout == "", (res.returncode, res.stdout, res.stderr)
    assert res.stderr.count("\n") == 1 and res.stderr.startswith(f"error: fiqa-bench run: {message}"), res.stderr
    assert "Traceback" not in res.stderr


def test_fiqa_bench_alone_is_one_line():
    res = subprocess.run(_command(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == ""
    assert re.fullmatch(
        r"error: fiqa-bench: missing a command \([a-z, -]+\); `fiqa-bench --help` says what each "
        r"does\.\n",
        res.stderr,
    ), res.stderr


def _summaries(help_text: str) -> dict[str, str]:
    """The Commands section of a group's --help: name -> summary (wrapped lines joined)."""
    section = help_text.split("\nCommands:\n", 1)[1]
    out: dict[str, str] = {}
    last = None
    for line in section.splitlines():
        entry = re.match(r"^  (\S+)(?:\s{2,}(.*))?$", line)
        if entry:
            last = entry.group(1)
            out[last] = (entry.group(2) or "").strip()
        elif line.strip() and last is not None:
            out[last] = f"{out[last]} {line.strip()}".strip()
    return out


@pytest.mark.parametrize("width", [80, 50])
@pytest.mark.parametrize(
    "path", [p for p, cmd in _walk() if isinstance(cmd, click.Group)], ids=lambda p: " ".join(p) or "(root)"
)
def test_help_summaries_are_whole_sentences(path, width):
    group = main
    for name in path:
        group = group.commands[name]
    res = CliRunner().invoke(main, [*path, "--help"], terminal_width=width)
    assert res.exit_code == 0, res.output
    summaries = _summaries(res.stdout)
    assert set(summaries) == {n for n, c in group.commands.items() if not c.hidden}
    for name, text in summaries.items():
        assert text and text[0].isupper(), (name, text)
        assert text.endswith(".") and not text.endswith("..."), (name, text)
        # not cut at an abbreviation: click's own shortening stops at "Eq." or "e.g."
        assert not re.search(r"\b(Eq|e\.g|i\.e|cf|vs)\.$", text), (name, text)
