"""The application object every command gets from click's context: the global options (Settings),
the one Output, and how to get an AWS session. Commands build their Context through it.

Imports nothing heavy at module level (``flowwatch --help`` must not load boto3 or rich).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowwatch.settings import Settings

if TYPE_CHECKING:
    from flowwatch.config import Config
    from flowwatch.context import SessionFactory   # (profile, region) -> boto3.Session
    from flowwatch.console import Output
    from flowwatch.local.process import ServerInfo
    from flowwatch.model import Context

OUTPUTS = ("table", "json", "csv")   # the data formats of the global --output


@dataclass
class App:
    settings: Settings
    session_factory: "SessionFactory | None" = None    # None: boto3.Session(profile_name=, region_name=)
    output: "Output | None" = field(default=None, repr=False)   # built on first use

    @property
    def out(self) -> "Output":
        """The one Output of this run (rich loads here, not at import)."""
        if self.output is None:
            from flowwatch.console import Output

            self.output = Output(self.settings.verbosity, self.settings.debug, wide=self.settings.wide)
        return self.output

    def use(self, settings: Settings) -> None:
        """The global options as merged so far (an option after the subcommand is parsed after the group)."""
        self.settings = settings
        if self.output is not None:
            self.output.verbosity, self.output.debug = settings.verbosity, settings.debug
            self.output.wide = settings.wide

    def config(self, settings: Settings | None = None) -> "Config":
        """The validated config (exit 2 on anything wrong), before any AWS call."""
        from flowwatch.context import load

        return load(settings or self.settings)

    def context(self, *, settings: Settings | None = None, config: "Config | None" = None,
                **flags: Any) -> "Context":
        """A Context on this App's Output and session factory; with ``--local`` on the local AWS
        (started if needed), whose client it carries as ``local_api``."""
        from flowwatch.context import build_context

        settings = settings or self.settings
        config = config or self.config(settings)
        endpoint, api = None, None
        if settings.local:
            from flowwatch.local.client import LocalApi

            endpoint = settings.endpoint_url or self.local_server().url
            api = LocalApi(endpoint)
        return build_context(settings, config=config, out=self.out, session_factory=self.session_factory,
                             endpoint_url=endpoint, local_api=api, **flags)

    def local_server(self) -> "ServerInfo":
        """``--local``: the running local AWS of the default state dir, started first if needed."""
        from flowwatch.local import process

        info = process.running()
        if info is None:
            with self.out.working("starting the local AWS (moto + flowwatch data plane)..."):
                info, started = process.ensure_running()
            if started:
                self.out.info(f"[dim]local AWS started on {info.url} (pid {info.pid}); "
                              "`flowwatch local stop` stops it and forgets its state[/dim]")
        return info
