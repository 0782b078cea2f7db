"""Root app, global options and the single error boundary.

A ``LstmcastError`` becomes one red line on stderr and its documented exit code; with
``--verbose`` it keeps its traceback. Any other exception is a bug and keeps its traceback, with
locals hidden (they may hold API keys). With ``--json`` the error is also printed on stdout as
``{"error": {"code": N, "message": ...}}``.

The global options ``--data-dir``, ``--verbose`` and ``--json`` work before or after the
subcommand: ``_Boundary`` adds ``--data-dir`` and ``--verbose`` to every command as options of its
own (so click parses them where they stand, and an option *value* that looks like one is never
mistaken for it), and lets the root ``--json`` switch on each command's own ``--json`` flag.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import typer
import typer.completion
import typer.main
import typer.models
from typer.core import TyperCommand, TyperGroup

from lstmcast import __version__
from lstmcast.cli import common
from lstmcast.errors import EXIT_INTERRUPTED, EXIT_USAGE, LstmcastError

SHELLS = ("bash", "zsh", "fish")
_ARGV = "lstmcast.argv"
_COMPLETION_OPTIONS = ("--show-completion", "--install-completion")


def _leaf_data_dir(ctx: typer.Context, value: Path | None) -> None:
    if value is None:
        return
    ctx.meta[common.META_DATA_DIR] = value  # symbol completion reads it (no root callback runs then)
    if ctx.resilient_parsing:
        return
    root = ctx.find_root()
    if common.is_app_settings(root.obj):
        from lstmcast.workspace import resolve_data_dir

        root.obj = dataclasses.replace(root.obj, data_dir=resolve_data_dir(value))


def _leaf_verbose(ctx: typer.Context, value: bool) -> None:
    root = ctx.find_root()
    if value and common.is_app_settings(root.obj):
        root.obj = dataclasses.replace(root.obj, verbose=True)
        common.route_warnings(verbose=True)


def _shell_optional(args: list[str]) -> list[str]:
    """``--show-completion`` / ``--install-completion`` without a shell mean the current one.

    typer's parser has no options with an optional value, so the SHELL is made explicit here."""
    for i in range(len(args) - 1, -1, -1):
        if args[i] in _COMPLETION_OPTIONS and (i + 1 == len(args) or args[i + 1].startswith("-")):
            args.insert(i + 1, "auto")
    return args


def _completion(action):  # type: ignore[no-untyped-def]
    # typer's own --show-completion is a flag, so `--show-completion zsh` printed the *detected*
    # shell's script and ignored "zsh"; these take the shell as an optional value.
    def callback(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> None:
        if value is None or ctx.resilient_parsing:
            return
        if value not in ("auto", *SHELLS):
            raise typer.BadParameter(f"{value!r} is not one of: {', '.join(SHELLS)}")
        action(ctx, param, True if value == "auto" else value)

    return callback


def _options_template(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", expose_value=False, callback=_leaf_data_dir, metavar="DIR",
        help="Data directory (also accepted before the subcommand).", show_default=False,
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", expose_value=False, callback=_leaf_verbose,
        help="Show tracebacks and debug logs.",
    ),
) -> None:
    """The global options every command accepts after its name too."""


def _completion_template(
    install: str | None = typer.Option(
        None, "--install-completion", is_eager=True, expose_value=False,
        metavar="[bash|zsh|fish]", show_default=False,
        callback=_completion(typer.completion.install_callback),
        help="Install shell completion for SHELL (default: the current shell).",
    ),
    show: str | None = typer.Option(
        None, "--show-completion", is_eager=True, expose_value=False,
        metavar="[bash|zsh|fish]", show_default=False,
        callback=_completion(typer.completion.show_callback),
        help="Print the completion script for SHELL (default: the current shell), e.g. "
        "`lstmcast --show-completion zsh > ~/.zfunc/_lstmcast`.",
    ),
) -> None:
    """Shell completion options of the root command."""


def _params_of(template) -> list:  # type: ignore[no-untyped-def]
    """typer's parameter objects for a template function's options (built once, shared)."""
    tiny = typer.Typer(add_completion=False)
    tiny.command()(template)
    return list(typer.main.get_command(tiny).params)


def _wrap_json_callback(param) -> None:  # type: ignore[no-untyped-def]
    """The command's own ``--json`` is on when given there or before the subcommand; either way
    the error boundary learns that this run speaks JSON."""
    inner = param.callback

    def callback(ctx, p, value):  # type: ignore[no-untyped-def]
        value = bool(value) or bool(ctx.meta.get(common.META_JSON))
        if value:
            ctx.meta[common.META_JSON] = True
        return inner(ctx, p, value) if inner is not None else value

    param.callback = callback


def _adopt(command, options: list) -> None:  # type: ignore[no-untyped-def]
    """Give every command the global options, SYMBOL completion and the shared ``--json``."""
    if hasattr(command, "commands"):  # a group: its commands
        for sub in command.commands.values():
            _adopt(sub, options)
        return
    names = {opt for p in command.params for opt in p.opts}
    for p in command.params:
        if "--json" in p.opts:
            _wrap_json_callback(p)
        if p.param_type_name == "argument" and p.name in ("symbol", "symbols") and not p._custom_shell_complete:
            # what typer's autocompletion= sets; the store is read without pandas
            p._custom_shell_complete = common.complete_symbol
    command.params += [o for o in options if not set(o.opts) & names]


def _json_wanted(ctx) -> bool:  # type: ignore[no-untyped-def]
    """Whether this run speaks JSON. Normally the parsed flag; an error raised while the command
    line is still being parsed (a usage error, a bad --data-dir before --json) comes before it,
    so then the words themselves are read, up to a ``--``."""
    if ctx.meta.get(common.META_JSON):
        return True
    argv = ctx.meta.get(_ARGV, [])
    return "--json" in (argv[: argv.index("--")] if "--" in argv else argv)


class _LazyCommands(MutableMapping):
    """The root's ``commands``: name -> click command, each built from its typer registration on
    first use and given the global options then. Building a command reads its signature and type
    hints; doing that for all of them took a third of `lstmcast --help`, which needs none of them,
    and of every command, which needs one. Iterating values or items builds them all."""

    def __init__(self, registrations: dict[str, Any], adopt: Callable[[Any], None]) -> None:
        self._pending = dict(registrations)  # name -> typer CommandInfo | TyperInfo
        self._built: dict[str, Any] = {}
        self._adopt = adopt

    def registration(self, name: str) -> Any:
        return self._pending.get(name)

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            info = self._pending[name]  # KeyError: not a command
            cmd = _build(info)
            self._adopt(cmd)
            self._built[name] = cmd
        return self._built[name]

    def __setitem__(self, name: str, cmd: Any) -> None:
        self._pending.setdefault(name, None)
        self._built[name] = cmd

    def __delitem__(self, name: str) -> None:
        del self._pending[name]
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._pending)

    def __len__(self) -> int:
        return len(self._pending)


def _build(info: Any) -> Any:
    """The click command typer builds for one registration, exactly as in the whole app."""
    tiny = typer.Typer(rich_markup_mode=None, add_completion=False)
    tiny.callback()(lambda: None)  # a group, so the command is built as a subcommand would be
    if isinstance(info, typer.models.CommandInfo):
        tiny.registered_commands.append(info)
    else:
        tiny.registered_groups.append(info)
    return next(iter(typer.main.get_command(tiny).commands.values()))


def _listing(name: str, info: Any) -> Any:
    """A parameterless stand-in with the command's help, for the root's command list."""
    if isinstance(info, typer.models.CommandInfo):
        doc = info.help if info.help is not None else inspect.getdoc(info.callback)
        return TyperCommand(name, help=doc, short_help=info.short_help, hidden=info.hidden,
                            deprecated=info.deprecated)
    return TyperCommand(name, help=typer.main.solve_typer_info_help(info), hidden=bool(info.hidden),
                        deprecated=bool(info.deprecated))


class _Boundary(TyperGroup):
    """Every subcommand runs inside this group's ``invoke``: the one place errors are rendered."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        typer.completion.completion_init()  # the bash/zsh/fish classes typer's completion uses
        options = _params_of(_options_template)
        self.commands = _LazyCommands(_REGISTRATIONS, lambda cmd: _adopt(cmd, options))
        self.params += _params_of(_completion_template)

    def list_commands(self, ctx):  # type: ignore[override]
        return list(self.commands)  # names only: nothing is built to list them

    def format_commands(self, ctx, formatter) -> None:  # type: ignore[override]
        # the command list from each registration's help, without building the commands
        get = self.get_command
        listing = {n: _listing(n, self.commands.registration(n)) for n in self.commands
                   if self.commands.registration(n) is not None}
        self.get_command = lambda c, n: listing.get(n) or get(c, n)  # type: ignore[method-assign]
        try:
            super().format_commands(ctx, formatter)
        finally:
            del self.get_command

    def parse_args(self, ctx, args):  # type: ignore[override]
        # kept for a usage error under --json, which happens before any --json flag is parsed
        ctx.meta[_ARGV] = list(args)
        return super().parse_args(ctx, _shell_optional(list(args)))

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except LstmcastError as e:
            obj = ctx.obj
            if getattr(obj, "verbose", False):
                raise
            if _json_wanted(ctx):
                common.print_json_error(e.exit_code, e)
            common.print_error(e)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            if _json_wanted(ctx):
                common.print_json_error(EXIT_INTERRUPTED, "interrupted")
            common.err().print("[yellow]interrupted[/]", markup=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as e:
            # a bad command line (click's UsageError: usage on stderr, exit 2) also gets its JSON object
            usage = callable(getattr(e, "format_message", None))
            if usage and _json_wanted(ctx):
                common.print_json_error(getattr(e, "exit_code", None) or EXIT_USAGE, e.format_message())
            raise


app = typer.Typer(
    cls=_Boundary,
    name="lstmcast",
    help="Forecast stock and crypto prices with an LSTM, and say honestly whether it beats the naive forecast.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,  # _Boundary adds its own --show-completion/--install-completion [SHELL]
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lstmcast {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        metavar="DIR",
        help="Data directory (default: $LSTMCAST_HOME, else the per-user data folder). "
        "Accepted after the subcommand too.",
        show_default=False,
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks and debug logs."),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON (the subcommand's --json); errors too, as {\"error\": ...}."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    from lstmcast.workspace import AppSettings, resolve_data_dir

    if as_json:
        ctx.meta[common.META_JSON] = True
    common.route_warnings(verbose=verbose)
    try:
        ctx.obj = AppSettings(data_dir=resolve_data_dir(data_dir), verbose=verbose)
    except LstmcastError as e:
        if as_json:
            common.print_json_error(e.exit_code, e)
        common.print_error(e)
        raise typer.Exit(e.exit_code) from None


def _register() -> dict[str, Any]:
    """Every command's typer registration by name, in the order of `--help` (commands, then groups).

    Each command module adds its commands through register(app); its top-level imports stay light
    (no torch, pandas, yfinance or ccxt) so that `lstmcast --help` starts fast. The registrations
    are taken off ``app`` again: ``_Boundary`` builds each command when it is first used."""
    from lstmcast.cli import (
        backtest,
        data,
        fetch,
        forecasts,
        models,
        predict,
        report,
        run,
        schedule,
        settings_cmd,
        train,
    )
    from lstmcast.cli import status as status_cmd

    data.register(app)
    fetch.register(app)
    train.register(app)
    models.register(app)
    predict.register(app)
    backtest.register(app)
    report.register(app)
    run.register(app)
    schedule.register(app)
    forecasts.register(app)
    settings_cmd.register(app)
    status_cmd.register(app)
    found: dict[str, Any] = {}
    for info in app.registered_commands:
        found[info.name or typer.main.get_command_name(info.callback.__name__)] = info
    for group in app.registered_groups:
        found[group.name] = group
    app.registered_commands, app.registered_groups = [], []
    return found


_REGISTRATIONS = _register()


def main() -> None:
    import sys

    if sys.stderr.isatty():
        common.announce_slow_imports()  # "loading torch..." before the seconds an import takes
    app()


if __name__ == "__main__":
    main()
