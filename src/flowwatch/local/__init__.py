"""The embedded local AWS: moto's server + flowwatch's data plane, on 127.0.0.1.

Seen from the command line (``flowwatch.cli`` is the only product code that imports this package):

* ``process.py``: the background server process (state dir, start / stop / running, pid handling);
* ``client.py``: ``LocalApi``, the client of the server's own ``/_flowwatch/`` routes, handed to
  product code as ``Context.local_api`` (typed there by the ``flowwatch.model.LocalAws`` protocol).

The server itself (its own process, ``python -m flowwatch.local.server``):

* ``server.py``: the WSGI middleware over moto's app: the taps on moto's answers and the routes;
* ``dataplane.py``: the core: the clock and the composition of the emulated APIs below;
* one module per AWS API that moto stores but does not run: ``flow_logs.py`` (flow-log delivery
  to CloudWatch Logs and S3), ``metric_filters.py`` (PutLogEvents -> metric data),
  ``alarm_state.py`` (alarm evaluation, state changes, actions; the rules in ``alarms.py``),
  ``notifications.py`` (SNS publishes and the inbox); ``loopback.py``: the server's clients of itself.

Nothing here imports a step, the engine or the command line.
"""
