"""The local AWS server process: moto's server plus flowwatch's data plane, on 127.0.0.1 only.

Started (detached, in its own session) by ``flowwatch.local.process.start`` as::

    python -m flowwatch.local.server --port N --state-dir DIR [--tick SECONDS]

It binds 127.0.0.1 (never 0.0.0.0; port 0 picks a free port), writes ``DIR/server.json``
({pid, port, url, started}) once it listens, serves until SIGTERM/SIGINT, then removes that
file. Its log is wherever the parent sent stdout/stderr (``DIR/server.log``).

One WSGI application, built from moto's public server API (``DomainDispatcherApplication`` +
``create_backend_app``, as ``moto_server`` and ``ThreadedMotoServer`` use them), wrapped by a
small middleware:

* ``/_flowwatch/*``: flowwatch's own routes: ``GET health``, ``POST traffic`` (the local
  flow-log service), ``GET inbox``, ``GET alarms``, ``POST evaluate`` (evaluate every alarm
  now), ``POST clock`` ({"advance": seconds}: fast-forward).
* S3 bucket policies: stored as given and returned by GetBucketPolicy, but moto only gets the
  statements without a Condition (moto turns every conditional statement into a denial, which
  would lock a TLS-only or log-delivery bucket). Policies are not enforced locally.
* SSM requests are served one at a time (moto's PutParameter with Overwrite=False is check-then-insert;
  the stack lock needs it atomic, as on AWS).
* the operations that the data plane registered (``DataPlane.api``, a
  :class:`flowwatch.local.api.Api`) are served by it (FilterLogEvents, ...) or completed after
  moto answered (PutLogEvents -> metric filters and the event copy, Publish -> inbox, ...):
  the registry's docstring says how, ``DataPlane._operations`` what;
* a request signed with :data:`~flowwatch.local.dataplane.MOTO_KEY` (the data plane's
  ``moto_clients``) goes to moto unchanged, whatever the operation: how a served operation
  reads moto's own answer of it (ListMetrics, GetNamedQuery, ...);
* everything else goes to moto unchanged. The region of every signed request is noted so that
  alarms are evaluated in each region in use.

Before any of that, every request passes :func:`_refusal` (the local AWS serves the programs of
this host, never a web page that reaches it):

* ``Host`` must name the loopback this server listens on: ``127.0.0.1``, ``localhost`` or a
  ``*.localhost`` name (S3 virtual-hosted style), with no port or this server's port; any other
  is refused 403 (DNS rebinding: a page of ``evil.example`` re-pointed at 127.0.0.1);
* a request with a foreign ``Origin`` (a browser's cross-site request) and every CORS preflight
  are refused 403; no response carries ``Access-Control-*`` headers (moto's flask-cors would
  reflect any Origin, with PUT and DELETE allowed);
* a body is at most ``MAX_BODY`` bytes (413), and a ``Content-Encoding: gzip`` body at most
  ``MAX_INFLATED`` bytes once decompressed, inflated piece by piece (413 past it: a 510 KB
  bomb never becomes gigabytes).

The server's log (``--log-file``) is rotated by size (``--log-max-bytes``, ``LOG_BACKUPS``
older files).

The routes and taps call the parts of :class:`~flowwatch.local.dataplane.DataPlane` directly
(its docstring has the map of the modules).

This is the only flowwatch module that imports moto.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl

from flowwatch.local.api import ServiceError, json_request
from flowwatch.local.dataplane import MOTO_KEY, DataPlane
from flowwatch.polling import Poll
from flowwatch.private import private_dir, write_private_text

HOST = "127.0.0.1"
STATE_FILE = "server.json"
TAP_LIMIT = 8 * 1024 * 1024
MAX_BODY = 64 * 1024 * 1024
"""The largest request body accepted, as sent (413 beyond)."""
MAX_INFLATED = 16 * 1024 * 1024
"""The largest ``Content-Encoding: gzip`` request body accepted, decompressed (413 beyond)."""
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/")
_SCOPE_KEY = re.compile(rf"Credential={re.escape(MOTO_KEY)}/")

log = logging.getLogger("flowwatch.local")


class FlowwatchApp:
    """WSGI middleware: flowwatch's routes, then moto, with taps on the data-plane operations."""

    def __init__(self, moto_app: Callable[..., Any], plane: DataPlane, info: dict[str, Any]) -> None:
        self.moto = moto_app
        self.plane = plane
        self.info = info
        self.policies: dict[str, bytes] = {}   # bucket -> policy as given (see _s3)
        self.ssm_lock = threading.Lock()       # one SSM request at a time (see __call__)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        refused = _refusal(environ, self.info.get("port"))
        if refused is not None:
            log.warning("refused %s %s: %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")[:100],
                        refused[1])
            return _plain(start_response, *refused)
        start_response = _without_cors(start_response)
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_flowwatch/"):
            return self._own(environ, start_response, path[len("/_flowwatch/"):])
        if _SCOPE_KEY.search(environ.get("HTTP_AUTHORIZATION", "")):
            # the data plane reading moto's own answer of an operation it serves (DataPlane.moto_clients)
            return self.moto(environ, start_response)
        region, service = _scope(environ)
        self.plane.saw_region(region)
        if service == "s3":
            return self._s3(environ, start_response)
        if service == "ssm":
            # moto checks then inserts: two threads can both "create" PutParameter(Overwrite=False). AWS creates
            # it for one caller only, and the stack lock relies on that, so SSM requests are served one by one.
            with self.ssm_lock:
                return self._buffered(environ, start_response)
        op = self._operation(environ, service)
        if op is None:
            return self.moto(environ, start_response)
        return self._api(environ, start_response, region or "us-east-1", *op)

    def _buffered(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        _, body = self._moto(environ, start_response)
        return [body]

    def _moto(self, environ: dict[str, Any], start_response: Callable[..., Any],
              replace: Callable[[str, bytes], bytes] | None = None) -> tuple[str, bytes]:
        """Call moto, collecting its answer; ``replace(status, body)`` may swap the body."""
        captured: dict[str, Any] = {}

        def capture_start(status: str, headers: Any, exc_info: Any = None) -> Any:
            captured.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: None   # moto returns its body; it never calls write()

        result = self.moto(environ, capture_start)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        status = captured.get("status", "500 Internal Server Error")
        headers = list(captured.get("headers") or ())
        if replace is not None:
            new = replace(status, body)
            if new is not body:
                body = new
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(body))))
        start_response(status, headers, captured.get("exc_info"))
        return status, body

    # ---- S3 bucket policies ----------------------------------------------------------------
    def _s3(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """moto denies every object action that a *conditional* policy statement names (it cannot
        evaluate aws:SecureTransport, aws:SourceAccount, ...), so a TLS-only or log-delivery policy
        would lock the bucket. The local AWS keeps each policy as given (GetBucketPolicy returns it)
        and hands moto only its unconditional statements."""
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        method = environ.get("REQUEST_METHOD", "GET")
        if len(parts) == 1 and parts[0] and method == "PUT" and not query:
            return self._create_bucket(environ, start_response, parts[0])
        if len(parts) != 1 or not parts[0] or ("policy" not in query and method != "DELETE") or len(query) > 1:
            return self.moto(environ, start_response)
        bucket, policies = parts[0], self.policies
        if "policy" not in query:   # DeleteBucket
            status, body = self._moto(environ, start_response)
            if status.startswith("204"):
                policies.pop(bucket, None)
            return [body]
        if method == "PUT":
            original = _read_body(environ) or b""
            stripped = _unconditional(original)
            environ["wsgi.input"] = io.BytesIO(stripped)
            environ["CONTENT_LENGTH"] = str(len(stripped))
            for key in [k for k in environ if k in ("HTTP_CONTENT_MD5",) or k.startswith("HTTP_X_AMZ_CHECKSUM_")]:
                del environ[key]
            status, body = self._moto(environ, start_response)
            if status.startswith("2"):
                policies[bucket] = original
            return [body]
        if method == "GET":
            _, body = self._moto(environ, start_response,
                                 lambda status, body: policies.get(bucket, body) if status.startswith("200") else body)
            return [body]
        status, body = self._moto(environ, start_response)
        if method == "DELETE" and status.startswith("204"):
            policies.pop(bucket, None)
        return [body]

    def _create_bucket(self, environ: dict[str, Any], start_response: Callable[..., Any], bucket: str) -> Any:
        """CreateBucket with ``CreateBucketConfiguration.Tags``: AWS tags the bucket atomically, moto drops
        the tags. The local AWS applies them right after moto created the bucket, so an interrupted
        ``up`` never leaves an untagged bucket behind (as on AWS)."""
        raw = _read_body(environ) or b""
        bucket_tags = _create_bucket_tags(raw)
        status, body = self._moto(environ, start_response)
        if status.startswith("200") and bucket_tags:
            region = _scope(environ)[0] or "us-east-1"
            self.plane.clients.client("s3", region).put_bucket_tagging(
                Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in bucket_tags]})
        return [body]

    # ---- the operations the data plane serves or completes (flowwatch.local.api) -----------
    def _operation(self, environ: dict[str, Any], service: str | None) -> tuple[str, Any] | None:
        """(``service:Action``, request) when the data plane serves or completes this request, else None.
        The request is the JSON body (JSON protocols) or the form parameters (query protocols)."""
        if environ.get("REQUEST_METHOD") != "POST" or not service:
            return None
        api = self.plane.api
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            op = f"{service}:{target.rpartition('.')[2]}"
            if not api.wants(op):
                return None
            raw = _read_body(environ)
            if raw is None:
                return None
            try:
                return op, json_request(raw)
            except ServiceError:
                return op, None
        if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
            return None
        if not any(key.startswith(f"{service}:") for key in (*api.served, *api.completed)):
            return None
        raw = _read_body(environ)
        if raw is None:
            return None
        params = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        op = f"{service}:{params.get('Action', '')}"
        return (op, params) if api.wants(op) else None

    def _api(self, environ: dict[str, Any], start_response: Callable[..., Any], region: str, op: str,
             request: Any) -> list[bytes]:
        api = self.plane.api
        serve = api.served.get(op)
        if serve is None:
            def complete(status: str, body: bytes) -> bytes:
                if not status.startswith("200"):
                    return body
                for fn in api.completed.get(op, ()):
                    try:
                        new = fn(region, request if request is not None else {}, body)
                    except Exception:  # moto answered; a data-plane failure must not turn into a 500
                        log.exception("data plane failed after %s", op)
                        continue
                    if isinstance(new, bytes):
                        body = new
                return body

            _, body = self._moto(environ, start_response, complete)
            return [body]
        ctype = environ.get("CONTENT_TYPE") or "application/x-amz-json-1.1"
        try:
            if request is None:
                raise ServiceError("SerializationException", "the request body is not a JSON object")
            status, body = "200 OK", json.dumps(serve(region, request), default=str).encode("utf-8")
            headers = [("Content-Type", ctype)]
        except ServiceError as exc:
            status, body = f"{exc.status} {'Bad Request' if exc.status == 400 else 'Error'}", exc.body()
            headers = [("Content-Type", ctype), ("x-amzn-ErrorType", exc.code)]
            if environ.get("HTTP_X_AMZN_QUERY_MODE") or op.startswith("monitoring:"):
                headers.append(("x-amzn-query-error", f"{exc.code};Sender"))
        except Exception as exc:
            log.exception("data plane failed on %s", op)
            status, body = "500 Internal Server Error", ServiceError("InternalFailure", f"{type(exc).__name__}").body()
            headers = [("Content-Type", ctype), ("x-amzn-ErrorType", "InternalFailure")]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    # ---- flowwatch's routes --------------------------------------------------------------
    def _own(self, environ: dict[str, Any], start_response: Callable[..., Any], route: str) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        plane = self.plane
        try:
            payload = json.loads(_read_body(environ) or b"{}") if method == "POST" else {}
            if (method, route) == ("GET", "health"):
                result: Any = {**self.info, "now": plane.clock.now(), "offset": plane.clock.offset,
                               "regions": sorted(plane.regions), "inbox": len(plane.inbox)}
            elif (method, route) == ("POST", "traffic"):
                plane.saw_region(payload.get("region") or "us-east-1")
                result = plane.flow_logs.deliver(payload)
            elif (method, route) == ("GET", "inbox"):
                result = {"messages": plane.inbox.messages()}
            elif (method, route) == ("GET", "alarms"):
                result = {"alarms": plane.alarms.states(), "history": plane.alarms.history()}
            elif (method, route) == ("POST", "evaluate"):
                result = {"changes": plane.evaluate_alarms()}
            elif (method, route) == ("POST", "clock"):
                result = {"offset": plane.advance(float(payload.get("advance", 0))), "now": plane.clock.now()}
            else:
                return _json(start_response, "404 Not Found", {"error": f"no route {method} /_flowwatch/{route}"})
        except Exception as exc:
            log.exception("/_flowwatch/%s failed", route)
            return _json(start_response, "500 Internal Server Error", {"error": f"{type(exc).__name__}: {exc}"})
        return _json(start_response, "200 OK", result)


def _json(start_response: Callable[..., Any], status: str, value: Any) -> list[bytes]:
    body = json.dumps(value, default=str).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """Read the request body and put it back for moto; None when too big or of unknown length."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= 0 or length > TAP_LIMIT:
        return b"" if length == 0 else None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    if environ.get("HTTP_CONTENT_ENCODING") == "gzip":
        return _inflate(raw, MAX_INFLATED)   # within the cap: _refusal checked it
    return raw


# ---- what the local AWS refuses (Host, browsers, oversized bodies) ------------------------

def _refusal(environ: dict[str, Any], port: int | None) -> tuple[str, str] | None:
    """(status, reason) when the request is refused, else None; may replace the body with its copy."""
    host = environ.get("HTTP_HOST", "")
    if not _loopback_host(host, port):
        return "403 Forbidden", (f"Host {host[:100]!r} refused: the local AWS answers only Host 127.0.0.1, "
                                 "localhost or *.localhost (with its port)")
    origin = environ.get("HTTP_ORIGIN")
    if environ.get("REQUEST_METHOD") == "OPTIONS" and (origin is not None
                                                       or "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ):
        return "403 Forbidden", "CORS preflight refused: the local AWS serves no browser"
    if origin is not None and not _loopback_origin(origin, port):
        return "403 Forbidden", f"Origin {origin[:100]!r} refused: the local AWS serves no web page"
    return _body_refusal(environ)


def _loopback_host(host: str, port: int | None) -> bool:
    name, sep, given = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not sep:
        name, given = host, ""
    if given and (not given.isdigit() or port is None or int(given) != port):
        return False
    name = name.lower()
    return name in ("127.0.0.1", "localhost") or (name.endswith(".localhost") and len(name) <= 253)


def _loopback_origin(origin: str, port: int | None) -> bool:
    scheme, sep, host = origin.partition("://")
    return bool(sep) and scheme == "http" and "/" not in host and _loopback_host(host, port)


def _body_refusal(environ: dict[str, Any]) -> tuple[str, str] | None:
    """413 past MAX_BODY (as sent) or MAX_INFLATED (gzip, decompressed); reads a body of unknown
    length (chunked) into a copy, so that moto gets one of known length."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        return "400 Bad Request", "Content-Length is not a number"
    gzipped = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower() == "gzip"
    if length > MAX_BODY:
        return "413 Request Entity Too Large", f"a request body is at most {MAX_BODY} bytes, this one has {length}"
    if length < 0 and environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        raw = environ["wsgi.input"].read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return "413 Request Entity Too Large", f"a request body is at most {MAX_BODY} bytes"
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        length = len(raw)
    if gzipped and length > 0:
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            _inflate(raw, MAX_INFLATED)
        except _TooLarge:
            return ("413 Request Entity Too Large",
                    f"a gzip request body is at most {MAX_INFLATED} bytes decompressed")
        except (OSError, EOFError, zlib.error):
            return "400 Bad Request", "Content-Encoding gzip, but the body is not gzip"
    return None


class _TooLarge(Exception):
    pass


def _inflate(raw: bytes, cap: int) -> bytes:
    """``raw`` gunzipped (several members too), never holding more than ``cap + 64 KiB``: _TooLarge past ``cap``."""
    out: list[bytes] = []
    size = 0
    data = raw
    while data:
        inflater = zlib.decompressobj(wbits=31)
        while not inflater.eof:
            piece = inflater.decompress(data, 64 * 1024)
            size += len(piece)
            if size > cap:
                raise _TooLarge
            out.append(piece)
            data = inflater.unconsumed_tail
            if not piece and not data:
                raise EOFError("truncated gzip body")
        data = inflater.unused_data + inflater.unconsumed_tail   # the next member, if any
    return b"".join(out)


def _plain(start_response: Callable[..., Any], status: str, reason: str) -> list[bytes]:
    body = (reason + "\n").encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                            ("Connection", "close")])
    return [body]


def _without_cors(start_response: Callable[..., Any]) -> Callable[..., Any]:
    """start_response minus moto's ``Access-Control-*`` headers (flask-cors reflects any Origin)."""
    def start(status: str, headers: Any, exc_info: Any = None) -> Any:
        kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
        return start_response(status, kept, exc_info) if exc_info is not None else start_response(status, kept)
    return start


def _scope(environ: dict[str, Any]) -> tuple[str | None, str | None]:
    """(region, service) of a SigV4-signed request."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return (match.group(1), match.group(2)) if match else (None, None)


def _create_bucket_tags(body: bytes) -> list[tuple[str, str]]:
    """The (Key, Value) pairs of ``CreateBucketConfiguration/Tags`` in a CreateBucket body."""
    if b"Tag" not in body:
        return []
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return []
    pairs = []
    for tag in root.iter():
        if tag.tag.rsplit("}", 1)[-1] == "Tag":
            fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in tag}
            if "Key" in fields:
                pairs.append((fields["Key"], fields.get("Value", "")))
    return pairs


def _unconditional(policy: bytes) -> bytes:
    """The policy without its statements that have a Condition (moto would turn them into denials)."""
    try:
        doc = json.loads(policy)
        statements = doc["Statement"]
    except (ValueError, KeyError, TypeError):
        return policy
    statements = statements if isinstance(statements, list) else [statements]
    doc["Statement"] = [s for s in statements if not (isinstance(s, dict) and s.get("Condition"))]
    return json.dumps(doc).encode("utf-8")


def _setup_logging(log_file: str | None, max_bytes: int) -> None:
    """The log on stderr, or in ``log_file`` rotated past ``max_bytes`` (``.1`` ... ``.LOG_BACKUPS``);
    then stderr and stdout (tracebacks, warnings) go to the log too."""
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    if log_file is None:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=fmt)
    else:
        from logging.handlers import RotatingFileHandler

        handler = RotatingFileHandler(log_file, maxBytes=max(1, max_bytes), backupCount=LOG_BACKUPS,
                                      encoding="utf-8", errors="replace")
        handler.setFormatter(logging.Formatter(fmt))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
        stream = _LogStream(logging.getLogger("flowwatch.local.output"))
        sys.stdout = sys.stderr = stream
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


class _LogStream(io.TextIOBase):
    """A text stream whose lines become log records (so they rotate with the log)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.pending = ""

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        for line in lines:
            self.logger.warning("%s", line)
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.logger.warning("%s", self.pending)
            self.pending = ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowwatch.local.server")
    parser.add_argument("--port", type=int, default=4599)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--tick", type=float, default=2.0, help="seconds between alarm evaluations")
    parser.add_argument("--log-file", help="write the log here, rotated by size (default: stderr)")
    parser.add_argument("--log-max-bytes", type=int, default=LOG_MAX_BYTES,
                        help=f"rotate the log file past this size, keeping {LOG_BACKUPS} older files")
    args = parser.parse_args(argv)
    os.umask(0o077)   # the files it writes (the log and its rotations) are private
    _setup_logging(args.log_file, args.log_max_bytes)
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"   # no flask-cors on moto's app (read at import)

    from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                               create_backend_app)
    from werkzeug.serving import make_server

    state_dir = Path(args.state_dir)
    private_dir(state_dir)
    plane = DataPlane(tick=args.tick)
    info: dict[str, Any] = {"service": "flowwatch-local", "pid": os.getpid(), "started": time.time()}
    app = FlowwatchApp(DomainDispatcherApplication(create_backend_app), plane, info)
    try:
        server = make_server(HOST, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as exc:
        print(f"cannot listen on {HOST}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    port = server.server_address[1]
    plane.endpoint = f"http://{HOST}:{port}"
    info.update(port=port, url=plane.endpoint)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    serving.start()
    plane.start()
    state_file = state_dir / STATE_FILE
    tmp = state_file.with_suffix(".tmp")
    write_private_text(tmp, json.dumps({"pid": os.getpid(), "port": port, "url": plane.endpoint,
                                        "started": info["started"]}))
    tmp.replace(state_file)
    log.info("flowwatch local AWS listening on %s (pid %d)", plane.endpoint, os.getpid())

    def pause(seconds: float) -> None:   # a signal ends the pause at once
        stop.wait(seconds)

    try:
        for _ in Poll(timeout=None, interval=0.1, sleep=pause).ticks():   # until SIGTERM/SIGINT
            if stop.is_set() or not serving.is_alive():
                break
    finally:
        plane.stop()   # first: it talks to the server
        server.shutdown()
        try:
            if json.loads(state_file.read_text()).get("pid") == os.getpid():
                state_file.unlink()
        except (OSError, ValueError):
            pass
        log.info("flowwatch local AWS stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
