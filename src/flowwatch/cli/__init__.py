"""The flowwatch command line: the click group, ``main()`` and its one error boundary.

One module per command family (``stack``, ``query``, ``local``, ``simulate``, ``logs``,
``pattern``, ``demo``, ``unlock``), each thin: it builds a Context through the App (``cli/app.py``) that the
group puts into click's context, and calls the engine, query or action functions. Only click is
imported at module level, so `flowwatch --help` answers without loading boto3 or rich.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from flowwatch.cli import cache, demo, local, logs, pattern, query, simulate, stack, unlock
from flowwatch.cli.app import App
from flowwatch.cli.options import FlowwatchGroup, debug_requested, settings_from, with_global_options
from flowwatch.settings import Settings

if TYPE_CHECKING:
    from flowwatch.context import SessionFactory


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """flowwatch's version and those of the libraries that make its AWS calls and queries (no import)."""
    if not value or ctx.resilient_parsing:
        return
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def of(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    click.echo(f"flowwatch {of('flowwatch')}")
    for package in ("boto3", "botocore", "moto", "duckdb"):
        click.echo(f"  {package:<9} {of(package)}")
    click.echo(f"  {'python':<9} {platform.python_version()}")
    ctx.exit()


@click.group(cls=FlowwatchGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the versions of flowwatch, boto3, botocore, moto and DuckDB, and exit.")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Network monitoring from VPC Flow Logs: CloudWatch metric filter, alarm, SNS and Athena, in one command.

    The global options (--config, --stack, --profile, --region, --endpoint-url, --local, --output,
    --wide, -v, --debug) go before or after the command, and each is also read from FLOWWATCH_<NAME>.
    """
    make_app: Callable[[Settings], App] = ctx.obj if callable(ctx.obj) else App   # main() may hand in a factory
    ctx.obj = make_app(settings_from(ctx))


for _command in (stack.up, stack.status, stack.down, simulate.simulate_reject, simulate.simulate_scenario, simulate.watch,
                 logs.logs, pattern.pattern,
                 local.local, demo.demo, query.query, cache.cache, unlock.unlock):
    cli.add_command(_command)
with_global_options(cli)


def main(args: Sequence[str] | None = None, *, session_factory: "SessionFactory | None" = None) -> NoReturn:
    """The entry point (``flowwatch = "flowwatch.cli:main"``) and the one error boundary.

    ``session_factory`` ``(profile, region) -> boto3.Session`` replaces boto3's for every command
    of this run (tests hand in a moto or instrumented session).
    """
    from flowwatch.errors import FlowwatchError

    made: list[App] = []

    def make_app(settings: Settings) -> App:
        made.append(App(settings, session_factory=session_factory))
        return made[-1]

    try:
        rv = cli.main(args=list(args) if args is not None else None, standalone_mode=False, prog_name="flowwatch",
                      obj=make_app)
        sys.exit(rv if isinstance(rv, int) else 0)
    except click.ClickException as exc:           # usage errors: click's formatting, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:          # --help, --version
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except FlowwatchError as exc:                 # expected: one clean line (+ hint), its exit code
        _out(made, args).error(exc.message, exc.hint, getattr(exc, "context", ()))
        sys.exit(exc.exit_code)
    except Exception as exc:  # unexpected: type + message; traceback with --debug or FLOWWATCH_DEBUG
        _out(made, args).crash(exc)
        sys.exit(1)


def _out(made: list[App], args: Sequence[str] | None) -> Any:
    """The run's Output if the group got as far as making the App, else one for the error alone."""
    if made:
        return made[-1].out
    from flowwatch.console import Output

    return Output(debug=debug_requested(list(args if args is not None else sys.argv)))
