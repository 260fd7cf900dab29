"""From Settings (global options) to a Context: config, AWS session, output, names.

The endpoint and the local AWS's client are handed in (``flowwatch.cli.app.App`` resolves
``--local``); this module does not know the local AWS exists.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from flowwatch.config import Config, load_config
from flowwatch.console import Output
from flowwatch.model import Context, LocalAws, Stack
from flowwatch.naming import Names
from flowwatch.settings import Settings

#: ``(profile, region) -> boto3.Session``: how a Context gets its session (tests inject one).
SessionFactory = Callable[[str | None, str], Any]


def load(settings: Settings) -> Config:
    """Validate the config (exit 2 on anything wrong) before any AWS call."""
    return load_config(settings.config_path, stack=settings.stack, region=settings.region,
                       required=settings.config_explicit or settings.stack is None)


def build_context(settings: Settings, *, config: Config | None = None, out: Output | None = None,
                  session: Any = None, session_factory: SessionFactory | None = None,
                  endpoint_url: str | None = None, local_api: LocalAws | None = None, **flags: Any) -> Context:
    """A Context for one command. ``endpoint_url`` defaults to ``--endpoint-url``; with ``--local`` the
    caller passes the local server's URL and its client (``local_api``)."""
    from flowwatch.aws import Aws, default_session

    config = config or load(settings)
    out = out or Output(settings.verbosity, settings.debug)
    endpoint = endpoint_url or settings.endpoint_url
    if session is None:
        if endpoint and settings.local:
            _local_credentials()
        session = (session_factory or default_session)(None if settings.local else settings.profile, config.region)
    return Context(config=config, aws=Aws(session, endpoint, on_call=out.call), out=out, names=Names.from_config(config),
                   stack=Stack(config.stack), local=settings.local, local_api=local_api, **flags)


def _local_credentials() -> None:
    """The embedded local AWS accepts any credentials; never send real ones to it."""
    os.environ["AWS_ACCESS_KEY_ID"] = "flowwatch-local"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "flowwatch-local"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
