"""From Settings (global options) to a Context: config, AWS session, output, names."""

from __future__ import annotations

import os
from typing import Any

from flowwatch.config import Config, load_config
from flowwatch.console import Output
from flowwatch.model import Context, Stack
from flowwatch.naming import Names
from flowwatch.settings import Settings


def load(settings: Settings) -> Config:
    """Validate the config (exit 2 on anything wrong) before any AWS call."""
    return load_config(settings.config_path, stack=settings.stack, region=settings.region,
                       required=settings.config_explicit or settings.stack is None)


def endpoint_for(settings: Settings, out: Output) -> str | None:
    """--endpoint-url wins; --local points at the embedded local AWS, starting it when needed."""
    if settings.endpoint_url:
        return settings.endpoint_url
    if settings.local:
        from flowwatch.local import ensure_running

        return ensure_running(out)
    return None


def build_context(settings: Settings, *, config: Config | None = None, out: Output | None = None,
                  session: Any = None, **flags: Any) -> Context:
    from flowwatch.aws import Aws

    config = config or load(settings)
    out = out or Output(settings.verbosity, settings.debug)
    endpoint = endpoint_for(settings, out)
    if session is not None:
        aws = Aws(session, endpoint)
    else:
        if endpoint and settings.local:
            _local_credentials()
        aws = Aws.create(profile=None if settings.local else settings.profile, region=config.region,
                         endpoint_url=endpoint)
    return Context(config=config, aws=aws, out=out, names=Names.from_config(config), stack=Stack(config.stack),
                   local=settings.local, **flags)


def _local_credentials() -> None:
    """The embedded local AWS accepts any credentials; never send real ones to it."""
    os.environ["AWS_ACCESS_KEY_ID"] = "flowwatch-local"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "flowwatch-local"
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
