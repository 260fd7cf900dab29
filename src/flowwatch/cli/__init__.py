"""The flowwatch command line: the click group, ``main()`` and its one error boundary.

One module per command family (``stack``, ``query``, ``local``, ``simulate``, ``logs``,
``pattern``, ``demo``), each thin: it builds a Context through the App (``cli/app.py``) that the
group puts into click's context, and calls the engine, query or action functions. Only click is
imported at module level, so `flowwatch --help` answers without loading boto3 or rich.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from flowwatch.cli import cache, demo, local, logs, pattern, query, simulate, stack
from flowwatch.cli.app import OUTPUTS, App
from flowwatch.settings import Settings

if TYPE_CHECKING:
    from flowwatch.context import SessionFactory


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", default="flowwatch.yaml", show_default=True, envvar="FLOWWATCH_CONFIG",
              type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--stack", envvar="FLOWWATCH_STACK", help="Stack name (overrides the config's `stack`).")
@click.option("--profile", envvar="FLOWWATCH_PROFILE", help="AWS profile (else AWS_PROFILE / the default chain).")
@click.option("--region", envvar="FLOWWATCH_REGION", help="AWS region (overrides the config's `region`).")
@click.option("--endpoint-url", envvar="FLOWWATCH_ENDPOINT_URL", help="Send every AWS call to this endpoint.")
@click.option("--local", is_flag=True, envvar="FLOWWATCH_LOCAL",
              help="Use the embedded local AWS on 127.0.0.1 (started if not running).")
@click.option("--output", type=click.Choice(OUTPUTS), default="table", envvar="FLOWWATCH_OUTPUT",
              help="Data format on stdout.")
@click.option("-v", "--verbose", count=True, help="More detail (-vv for debug lines).")
@click.option("--debug", is_flag=True, envvar="FLOWWATCH_DEBUG", help="Show tracebacks.")
@click.version_option(package_name="flowwatch")
@click.pass_context
def cli(ctx: click.Context, config_path: str, stack: str | None, profile: str | None, region: str | None,
        endpoint_url: str | None, local: bool, output: str, verbose: int, debug: bool) -> None:
    """Network monitoring from VPC Flow Logs: CloudWatch metric filter, alarm, SNS and Athena, in one command."""
    from click.core import ParameterSource

    explicit = ctx.get_parameter_source("config_path") not in (ParameterSource.DEFAULT, None)
    if endpoint_url and local:
        raise click.UsageError("--local and --endpoint-url exclude each other")
    settings = Settings(config_path=config_path, config_explicit=explicit, stack=stack, profile=profile,
                        region=region, endpoint_url=endpoint_url, local=local, output=output,
                        verbosity=verbose, debug=debug)
    make_app: Callable[[Settings], App] = ctx.obj if callable(ctx.obj) else App   # main() may hand in a factory
    ctx.obj = make_app(settings)


for _command in (stack.up, stack.status, stack.down, simulate.simulate_reject, logs.logs, pattern.pattern,
                 local.local, demo.demo, query.query, cache.cache):
    cli.add_command(_command)


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
        _out(made, args).error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except Exception as exc:  # unexpected: type + message; traceback with --debug
        _out(made, args).crash(exc)
        sys.exit(1)


def _out(made: list[App], args: Sequence[str] | None) -> Any:
    """The run's Output if the group got as far as making the App, else one for the error alone."""
    if made:
        return made[-1].out
    from flowwatch.console import Output

    return Output(debug="--debug" in (args if args is not None else sys.argv))
