"""The global options, defined once and accepted before or after any subcommand, at any depth.

Every command of the tree gets its own copy of :func:`global_options` (``with_global_options``;
lazily built commands get theirs from :class:`FlowwatchGroup`). None of them reaches the command's
function: each records its value in click's ``ctx.meta`` (shared by the whole run), and the most
explicit source wins (command line > FLOWWATCH_* > default); between two command-line values the
later (deeper) one wins, so ``flowwatch --output csv status --output json`` prints JSON. The App
of the run gets the merged :class:`Settings` as soon as it exists and after every later option.

Only click is imported (``flowwatch --help`` must stay light).
"""

from __future__ import annotations

import difflib
import os
from typing import Any

import click
from click.core import ParameterSource

from flowwatch.cli.app import OUTPUTS, App
from flowwatch.settings import Settings, check_endpoint_url

_SEEN = "flowwatch.globals"          # ctx.meta key: option name -> (source, value)
_MARK = "_flowwatch_globals"         # set on a command once it has its copy of the options
_TRUE = ("1", "true", "t", "yes", "y", "on")


def global_options() -> list[click.Option]:
    """A fresh copy of the global options (a click parameter belongs to one command)."""
    def option(*decls: str, **attrs: Any) -> click.Option:
        return click.Option(list(decls), expose_value=False, callback=_remember, **attrs)

    return [
        option("--config", "config_path", default="flowwatch.yaml", show_default=True, envvar="FLOWWATCH_CONFIG",
               type=click.Path(dir_okay=False), help="YAML config file."),
        option("--stack", envvar="FLOWWATCH_STACK", help="Stack name (overrides the config's `stack`)."),
        option("--profile", envvar="FLOWWATCH_PROFILE", help="AWS profile (else AWS_PROFILE / the default chain)."),
        option("--region", envvar="FLOWWATCH_REGION", help="AWS region (overrides the config's `region`)."),
        option("--endpoint-url", envvar="FLOWWATCH_ENDPOINT_URL", help="Send every AWS call to this endpoint."),
        option("--local", is_flag=True, envvar="FLOWWATCH_LOCAL",
               help="Use the embedded local AWS on 127.0.0.1 (started if not running)."),
        option("--output", type=click.Choice(OUTPUTS), default="table", envvar="FLOWWATCH_OUTPUT",
               help="Data format on stdout."),
        option("--wide", is_flag=True, envvar="FLOWWATCH_WIDE", help="Tables: every column, nothing cut."),
        option("-v", "--verbose", "verbosity", count=True, envvar="FLOWWATCH_VERBOSE",
               help="-v: the AWS calls made (service, operation, ms); -vv: their request ids and debug lines."),
        option("--debug", is_flag=True, envvar="FLOWWATCH_DEBUG", help="Show tracebacks."),
    ]


def with_global_options(command: click.Command) -> click.Command:
    """Give ``command`` (and, for a group, every command it holds) its copy of the global options."""
    if not getattr(command, _MARK, False):
        # a command that defines one of these flags itself keeps its own (it then does not feed Settings)
        taken = {flag for param in command.params for flag in getattr(param, "opts", ())}
        command.params.extend(opt for opt in global_options() if not taken.intersection(opt.opts))
        setattr(command, _MARK, True)
    for sub in getattr(command, "commands", {}).values():
        with_global_options(sub)
    return command


class FlowwatchGroup(click.Group):
    """A group whose commands, also those made on demand, take the global options, and whose
    unknown command names get a suggestion ("did you mean rejects?")."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        return with_global_options(command) if command is not None else None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                             list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            if close:
                ctx.fail(f"No such command {name!r}; did you mean {close[0]}?")
        return super().resolve_command(ctx, args)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Record one global option's value unless a more explicit one was seen; update the run's App."""
    assert param.name is not None
    source = ctx.get_parameter_source(param.name) or ParameterSource.DEFAULT
    seen: dict[str, tuple[ParameterSource, Any]] = ctx.meta.setdefault(_SEEN, {})
    before = seen.get(param.name)
    if before is None or source <= before[0]:       # a lower source is more explicit; a tie: the later wins
        seen[param.name] = (source, value)
    app = ctx.find_object(App)
    if app is not None and not ctx.resilient_parsing:
        app.use(settings_from(ctx))
    return value


def settings_from(ctx: click.Context) -> Settings:
    """The global options of this run, merged over every command given so far (exit 2 on a conflict)."""
    seen: dict[str, tuple[ParameterSource, Any]] = ctx.meta.get(_SEEN, {})
    values = {name: value for name, (_, value) in seen.items()}
    config_source = seen.get("config_path", (ParameterSource.DEFAULT, None))[0]
    settings = Settings(config_path=values.get("config_path", "flowwatch.yaml"),
                        config_explicit=config_source not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP),
                        stack=values.get("stack"), profile=values.get("profile"), region=values.get("region"),
                        endpoint_url=values.get("endpoint_url"), local=bool(values.get("local")),
                        output=values.get("output") or "table", wide=bool(values.get("wide")),
                        verbosity=int(values.get("verbosity") or 0), debug=bool(values.get("debug")))
    if settings.local and settings.endpoint_url:
        raise click.UsageError("--local and --endpoint-url exclude each other", ctx=ctx)
    if settings.endpoint_url:                  # bad input: exit 2 before any client is made
        source = seen["endpoint_url"][0]
        check_endpoint_url(settings.endpoint_url,
                           "FLOWWATCH_ENDPOINT_URL" if source == ParameterSource.ENVIRONMENT else "--endpoint-url")
    return settings


def debug_requested(args: list[str]) -> bool:
    """--debug or FLOWWATCH_DEBUG, read without click (for an error before the options were parsed)."""
    return "--debug" in args or os.environ.get("FLOWWATCH_DEBUG", "").strip().lower() in _TRUE
