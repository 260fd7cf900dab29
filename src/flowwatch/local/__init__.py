"""The embedded local AWS: moto's server + flowwatch's data plane, on 127.0.0.1.

* ``process.py``: the background server process (state dir, start / stop / running);
* ``client.py``: ``LocalApi``, the client of the server's own ``/_flowwatch/`` routes;
* ``server.py``, ``dataplane.py``, ``alarms.py``: the server itself (runs in its own process).

Only ``flowwatch.cli`` and this package know the local AWS exists; product code gets a
``LocalApi`` handed in as ``Context.local_api``. The names below are re-exported for the tests of
this package that reach the process functions as ``flowwatch.local.start`` etc.
"""

from flowwatch.local.client import LocalApi, LocalError
from flowwatch.local.process import (ServerInfo, ensure_running, pid_alive, read_info, running, start, state_dir,
                                     stop)

__all__ = ["LocalApi", "LocalError", "ServerInfo", "ensure_running", "pid_alive", "read_info", "running", "start",
           "state_dir", "stop"]
