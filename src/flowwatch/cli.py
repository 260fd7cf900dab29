"""The flowwatch command line: thin click commands over engine/actions modules.

Only click is imported at module level, so `flowwatch --help` answers without loading boto3.
"""

from __future__ import annotations

import sys

import click

from flowwatch.settings import Settings

OUTPUTS = ("table", "json", "csv")


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
    ctx.obj = Settings(config_path=config_path, config_explicit=explicit, stack=stack, profile=profile,
                       region=region, endpoint_url=endpoint_url, local=local, output=output,
                       verbosity=verbose, debug=debug)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show the plan; make no mutating call.")
@click.pass_obj
def up(settings: Settings, dry_run: bool) -> None:
    """Create or converge the stack (idempotent: a second run changes nothing)."""
    from flowwatch import engine

    engine.up_command(settings, dry_run=dry_run)


@cli.command()
@click.pass_obj
def status(settings: Settings) -> None:
    """Every resource of the stack: found / missing / drifted, delivery, alarm and subscription state."""
    from flowwatch import engine

    engine.status_command(settings)


@cli.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--keep-data", is_flag=True, help="Keep the S3 bucket (flow-log data) and the log group.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; make no mutating call.")
@click.pass_obj
def down(settings: Settings, yes: bool, keep_data: bool, dry_run: bool) -> None:
    """Remove everything the stack owns, in reverse order (a second run is a no-op)."""
    from flowwatch import engine

    engine.down_command(settings, yes=yes, keep_data=keep_data, dry_run=dry_run)


@cli.command("simulate-reject")
@click.option("--mode", type=click.Choice(["instance", "inject"]), default=None,
              help="instance: launch a pinging EC2 instance (AWS default); inject: write synthetic REJECT records.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Watch the alarm until ALARM or timeout.")
@click.option("--timeout", type=click.IntRange(min=1), default=None,
              help="Seconds to wait for ALARM (default 900 on AWS, 120 locally).")
@click.option("--count", type=click.IntRange(1, 10000), default=10, show_default=True,
              help="Records to inject (inject mode).")
@click.pass_obj
def simulate_reject(settings: Settings, mode: str | None, wait: bool, timeout: int | None, count: int) -> None:
    """Make forbidden (denied ICMP) traffic happen and watch the alarm fire. Not idempotent: each run adds traffic."""
    from flowwatch.actions import simulate

    sys.exit(simulate.run(settings, mode=mode, wait=wait, timeout=timeout, count=count))


@cli.group()
def logs() -> None:
    """Read the stack's flow-log records in CloudWatch Logs."""


@logs.command("tail")
@click.option("--since", default="10m", show_default=True, help="How far back: 30s, 10m, 2h, 1d.")
@click.option("--follow", "-f", is_flag=True, help="Keep reading new records.")
@click.option("--rejects", is_flag=True, help="Only REJECTed records.")
@click.option("--pattern", "pattern_text", help="A CloudWatch Logs filter pattern.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after N records.")
@click.pass_obj
def logs_tail(settings: Settings, since: str, follow: bool, rejects: bool, pattern_text: str | None,
              limit: int | None) -> None:
    """Print flow-log records, parsed and coloured (REJECT stands out)."""
    from flowwatch.actions import logs as logs_action

    if rejects and pattern_text:
        raise click.UsageError("--rejects and --pattern exclude each other")
    logs_action.tail(settings, since=since, follow=follow, rejects=rejects, pattern_text=pattern_text, limit=limit)


@cli.group()
def pattern() -> None:
    """CloudWatch Logs filter patterns, evaluated offline."""


@pattern.command("test")
@click.argument("pattern_text", metavar="PATTERN")
@click.argument("source", metavar="[FILE|-]", default="-", type=click.File("r", encoding="utf-8"))
@click.option("--remote", is_flag=True, help="Evaluate with CloudWatch Logs TestMetricFilter instead.")
@click.pass_obj
def pattern_test(settings: Settings, pattern_text: str, source, remote: bool) -> None:
    """Print the lines of FILE (or stdin) that PATTERN matches. Exit 0 if any matched, 1 if none, 2 if invalid."""
    from flowwatch.actions import pattern_test as action

    sys.exit(action.run(settings, pattern_text, source, remote=remote))


@cli.group()
def local() -> None:
    """The embedded local AWS (moto's server + flowwatch's data plane) on 127.0.0.1."""


@local.command("start")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port on 127.0.0.1 (default 4599; 0 picks a free one).")
@click.pass_obj
def local_start(settings: Settings, port: int | None) -> None:
    """Start the local AWS in the background."""
    from flowwatch import local as local_mod

    local_mod.start_command(settings, port=port)


@local.command("stop")
@click.pass_obj
def local_stop(settings: Settings) -> None:
    """Stop the local AWS (its state is lost)."""
    from flowwatch import local as local_mod

    local_mod.stop_command(settings)


@local.command("status")
@click.pass_obj
def local_status(settings: Settings) -> None:
    """Is the local AWS running, where, and what does it hold."""
    from flowwatch import local as local_mod

    sys.exit(local_mod.status_command(settings))


@local.command("inbox")
@click.pass_obj
def local_inbox(settings: Settings) -> None:
    """The notifications the local AWS would have e-mailed."""
    from flowwatch import local as local_mod

    local_mod.inbox_command(settings)


@cli.command()
@click.option("--keep", is_flag=True, help="Leave the stack and the local server up at the end.")
@click.pass_obj
def demo(settings: Settings, keep: bool) -> None:
    """The whole story on the embedded local AWS: up, reject, alarm, notification, query, down."""
    from flowwatch.actions import demo as demo_action

    sys.exit(demo_action.run(settings, keep=keep))


def _add_query() -> None:
    from flowwatch.cli_query import query

    cli.add_command(query)


_add_query()


def main() -> None:
    from flowwatch.errors import FlowwatchError

    try:
        rv = cli.main(standalone_mode=False, prog_name="flowwatch")
        sys.exit(rv if isinstance(rv, int) else 0)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except FlowwatchError as exc:
        _console().error(exc.message, exc.hint)
        sys.exit(exc.exit_code)
    except Exception as exc:  # unexpected: type + message; traceback with --debug
        _console(debug="--debug" in sys.argv).crash(exc)
        sys.exit(1)


def _console(debug: bool = False):
    from flowwatch.console import Output

    return Output(debug=debug)
