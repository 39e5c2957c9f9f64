"""What every ``fiqa-bench`` command shares: one-line usage errors (the group class that turns click's usage errors
and our own errors into one line and an exit code), the numeric option types that say so in one line, and the
registered face detectors as choices. Imported by the evaluation commands (:mod:`fiqa_bench.cli.main`) and the training
commands (:mod:`fiqa_bench.cli.training`)."""

from __future__ import annotations

import sys

import click

from fiqa_bench import registry
from fiqa_bench.errors import FiqaBenchError

#: The name of the root group (``fiqa_bench.cli.main``).
ROOT = "main"


def _command_path(ctx: click.Context | None) -> str:
    """``fiqa-bench`` + the sub-command names below the root group, however it was invoked (the console script,
    ``python -m fiqa_bench``, a test runner)."""
    names: list[str] = []
    c = ctx
    while c is not None and c.parent is not None:
        name = c.info_name or c.command.name
        assert name is not None  # click registers a sub-command by its name (add_command refuses one without)
        names.insert(0, name)
        c = c.parent
    if c is not None and c.command.name != ROOT:  # a sub-group invoked on its own (e.g. by a test runner)
        assert c.command.name is not None  # fiqa-bench's groups are all named
        names.insert(0, c.command.name)
    return " ".join(["fiqa-bench", *names])


def _first_sentence(text: str) -> str:
    """The first sentence of an option's help, without its full stop (``e.g.``, ``Eq. 1`` do not end one)."""
    import re

    return re.split(r"(?<=\.)\s+(?=[A-Z])", " ".join(text.split()))[0].rstrip(".")


def _usage_line(exc: click.UsageError) -> str:
    """The one line a usage error prints: ``error: fiqa-bench COMMAND: message`` (click's own text, its layout
    folded into one line; a missing option adds the first sentence of its help)."""
    message = " ".join(exc.format_message().split())
    param = getattr(exc, "param", None)
    if isinstance(exc, click.MissingParameter) and param is not None and getattr(param, "help", None):
        message = f"{message.rstrip('.')} ({_first_sentence(param.help)})."
    return f"error: {_command_path(exc.ctx)}: {message}"


class _OneLineUsageError(click.ClickException):
    """A usage error already folded into its one line; shown as it is, exit code 2 (click would add usage lines)."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(self.message, file=file, err=True)


class _IntRange(click.IntRange):
    """An integer option with a range: a non-number reads "'x' is not a valid integer." (click's own says "integer
    range"), its help shows the range."""

    name = "integer"


class _FloatRange(click.FloatRange):
    """A number option with a range (see :class:`_IntRange`)."""

    name = "float"


class _AllOrCount(click.ParamType):
    """``all`` or a positive number (``prepare --impostors``)."""

    name = "all|N"

    def convert(self, value, param, ctx):
        text = str(value).strip()
        if text == "all":
            return text
        if text.isdigit() and int(text) >= 1:
            return int(text)
        self.fail(f"{value!r} is neither 'all' nor a positive integer.", param, ctx)

    def get_metavar(self, param, ctx=None) -> str:
        return "all|N"


class _CleanErrors(click.Group):
    """Print fiqa-bench errors as one clear line (file/line/adapter named) instead of a traceback, and click's usage
    errors (no arguments, a missing option, a malformed value) as one line naming the command, exit code 2."""

    def __init__(self, *args, **kwargs) -> None:
        # the group with no sub-command reaches invoke (below), which says so in one line, instead of click's help
        kwargs.setdefault("invoke_without_command", True)
        kwargs.setdefault("subcommand_metavar", "COMMAND [ARGS]...")  # a command is still needed (usage line)
        super().__init__(*args, **kwargs)

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # the group's own options: `fiqa-bench --bogus`
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _OneLineUsageError(_usage_line(exc)) from None

    def invoke(self, ctx):
        try:
            rv = super().invoke(ctx)
            if ctx.invoked_subcommand is None:  # `fiqa-bench`, `fiqa-bench -v`, `fiqa-bench train-baseline`
                names = ", ".join(self.list_commands(ctx))
                raise click.UsageError(
                    f"missing a command ({names}); `{_command_path(ctx)} --help` says what each does.", ctx=ctx
                )
            return rv
        except FiqaBenchError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except click.UsageError as exc:  # one line, like every other error (click would add usage lines)
            raise _OneLineUsageError(_usage_line(exc)) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except OSError as exc:  # a safety net: an OS error not already named by the code that met it
            where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
            click.echo(f"error:{where} {exc.strerror or exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as exc:  # an AdapterInterrupt says which adapter was running
            what = f" {exc}" if str(exc) else ""
            click.echo(f"interrupted{what}: finished work is cached; run the same command again to resume", err=True)
            sys.exit(130)


#: The registered face detectors (entry-point group ``fiqa_bench.detectors``), the choices of every --detector.
_DETECTORS = registry.names("detector")


def config_options(only: tuple[str, ...] | None = None, metrics: bool = False):
    """A decorator adding click options generated from :class:`fiqa_bench.config.RunConfig` (one source of truth for
    names, types, choices, ranges, defaults and help): every setting (``fiqa-bench run``), or only the settings named
    in ``only`` plus, with ``metrics``, every option the registered metrics declare (``fiqa-bench import``)."""

    def add(f):
        from dataclasses import fields

        from fiqa_bench.config import RunConfig

        for fld in reversed(fields(RunConfig)):
            meta = fld.metadata
            if not meta.get("cli", True):
                continue
            if only is not None and fld.name not in only and not (metrics and meta.get("metric")):
                continue
            f = click.option(*_option_decls(fld), **_option_kwargs(fld))(f)
        return f

    return add


def _option_decls(fld) -> list[str]:
    meta = fld.metadata
    flag = meta.get("flag") or "--" + fld.name.replace("_", "-")
    return [flag] + ([meta["short"]] if meta.get("short") else []) + [fld.name]


def _option_kwargs(fld) -> dict:
    """The click arguments of one declared setting: its type, choices, range, default and help."""
    from dataclasses import MISSING

    from fiqa_bench.config import option_choices

    meta = fld.metadata
    kwargs: dict = {"help": meta.get("help", "")}
    required = fld.default is MISSING  # no default in RunConfig: a required option (no default=None given to
    default = None if required else fld.default  # click, which would count None as a value and pass it on)
    if meta.get("repeat"):
        kwargs.update(multiple=True, metavar=meta.get("metavar") or "KEY=VALUE")
    elif isinstance(default, bool):
        kwargs.update(is_flag=True, default=default)
    elif meta.get("choices"):
        kwargs.update(type=click.Choice(list(option_choices(meta) or ())), default=default, show_default=True)
    elif isinstance(default, int) and fld.type in ("int", int):
        kwargs.update(type=_IntRange(meta.get("min"), meta.get("max")), default=default, show_default=True)
    elif isinstance(default, float):
        kwargs.update(type=_FloatRange(meta.get("min"), meta.get("max")), default=default, show_default=True)
    elif required:
        kwargs.update(required=True)
    else:
        kwargs.update(default=default, show_default=default is not None)
    return kwargs
