"""CloudWatch Logs Insights for flow logs: the query language (``language``), the fields Logs Insights
discovers in an event (``fields``), the presets of `flowwatch logs insights` (``presets``) and the run on
AWS or the local AWS (``runner``).

``language`` and ``fields`` are pure (no AWS, no I/O): the local AWS evaluates queries with them
(``flowwatch.local.insights_service``), and the CLI validates a query with them before any AWS call.
"""
