"""Real clients (the AWS CLI, flowlogs-reader) against a real local server of this module's own:
started on 127.0.0.1 with a free port, stopped at the end of the module; fake credentials; nothing
reaches AWS. Assertions are on what the client prints or returns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import boto3
import pytest

from tests.local.test_dataplane import REGION, server  # noqa: F401  (module-scoped: a server per test module)

FAKE = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


class Cli:
    """The official AWS CLI (``python -m awscli``) pointed at the server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **FAKE,
                    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", self.url, "--region", REGION,
                               "--output", "json", *args], env=self.env, capture_output=True, text=True,
                              timeout=120)

    def __call__(self, *args: str) -> Any:
        done = self.run(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    def fails(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode != 0, done.stdout
        return done.stderr


@pytest.fixture(scope="module")
def aws_cli(server):
    return Cli(server.url)


@pytest.fixture(scope="module")
def boto(server):
    return lambda service: boto3.client(service, region_name=REGION, endpoint_url=server.url,
                                        aws_access_key_id="testing", aws_secret_access_key="testing")
