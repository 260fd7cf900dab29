"""The `flowwatch query` presets, written once in Athena (Trino) SQL over the stack's Glue table.

Each preset is plain Athena SQL over a table called ``flow_logs`` whose columns are the Glue
columns (``srcaddr``, ``dstaddr``, ``start``, ``"end"``, ``action``, ``log_status``, ... and
the partitions ``aws_account_id``, ``aws_region``, ``dt``). Every preset keeps NODATA/SKIPDATA rows
out with ``log_status = 'OK'``.

Together they cover the 16 predefined queries of AWS's own Athena integration for flow logs
(https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-run-athena-query.html, "Predefined
queries"): :attr:`Preset.aws` names each one's counterpart. As there, a preset reading fields the
record format lacks (``pkt_srcaddr``, ``instance_id``, ``subnet_id``: version 3+) is left out of the
named queries, and ``flowwatch query`` refuses it (exit 2).

:func:`build` parses a preset with sqlglot and composes the final statement as a syntax tree,
never by formatting text: the real table name, the address parameter (validated with
:mod:`ipaddress`, bound as a string literal), the time-window predicates (partition ``dt`` and
record ``start``, from parsed datetimes) and the LIMIT. :func:`scope_user_sql` does the same for
``query sql``: each reference to the table becomes a subquery restricted to the window.
The result is Athena SQL; the local engine transpiles that very text to DuckDB with sqlglot.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowwatch.errors import UsageError

if TYPE_CHECKING:
    from sqlglot import exp

    from flowwatch.timewindow import TimeWindow
    from flowwatch.records import RecordFormat

#: The table name the preset texts use; replaced by the stack's Glue table name.
TEMPLATE_TABLE = "flow_logs"

#: Bounds on a statement, checked before sqlglot parses it (its parser recurses, and its time grows with
#: the tokens): Athena's own size limit, a token count and a nesting depth no hand-written query reaches.
MAX_SQL_BYTES = 262_144
MAX_SQL_TOKENS = 5_000
MAX_SQL_DEPTH = 40
# Strings, quoted identifiers and comments are one token each (their brackets do not nest).
_TOKEN = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|--[^\n]*|/\*.*?(?:\*/|\Z)|\w+|[^\w\s]", re.S)
# Statements and clauses the local engine never runs inside a query (DuckDB's lockdown is the real fence).
_WRITES = ("DML", "DDL", "Into", "Command", "Set", "Pragma", "Copy", "Attach", "Detach", "Install", "Use",
           "LoadData", "Export")

_DATE = "date_format(from_unixtime(start), '%Y-%m-%d') AS \"date\""
#: admin-ports: the ports of administrative services (SSH, Telnet, RDP, VNC, WinRM, Webmin, cPanel, Plesk):
#: flowwatch's choice; AWS's page does not list its own.
ADMIN_PORTS = (22, 23, 2082, 2083, 2086, 2087, 3389, 5900, 5985, 5986, 8443, 10000)
_ADMIN = ", ".join(map(str, ADMIN_PORTS))
_TOTALS = "sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows"


@dataclass(frozen=True)
class Param:
    """A parameter, bound into ``condition`` (Athena SQL with ``:<name>``) when given. ``kind``: ``ip`` (an
    address, bound as a string), ``number`` (a whole number >= 1, ``default`` when not given), ``cidr`` (an IPv4
    block, bound as its first and last address as numbers, ``:lo`` and ``:hi``). ``clause``: the condition goes
    to WHERE, or to HAVING (a condition on the groups)."""

    name: str
    condition: str
    required: bool
    help: str
    kind: str = "ip"
    default: str | None = None
    clause: str = "where"

    @property
    def option(self) -> str:
        """The command-line option: ``--ip``, ``--min-ports``, ``--vpc-cidr``."""
        return "--" + self.name.replace("_", "-")


def _ipv4_number(column: str) -> str:
    """An IPv4 address column as a number (NULL for '-' or an IPv6 address), in SQL both engines run."""
    parts = [f"try_cast(split_part({column}, '.', {i + 1}) AS bigint) * {256 ** (3 - i)}" for i in range(4)]
    return "(" + " + ".join(parts) + ")"


def _in_block(column: str) -> str:
    return f"{_ipv4_number(column)} BETWEEN :lo AND :hi"


#: the ports of ssh-rdp-brute-force (those of the ssh-rdp-probe detection)
SSH_RDP_PORTS = (22, 3389)


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str                           # one line, for `flowwatch query --help`
    description: str
    sql: str                               # Athena SQL over TEMPLATE_TABLE
    params: tuple[Param, ...] = ()
    limit: int | None = None               # default LIMIT (--limit overrides)
    aws: tuple[str, ...] = ()              # AWS's predefined Athena queries this one stands for


PRESETS: tuple[Preset, ...] = (
    Preset(
        name="rejects",
        aws=("VpcFlowLogsRejectedTraffic",),
        summary="REJECTed records by start time (the lab's query).",
        description="Every REJECTed record, oldest first: date, interface, source, destination, start, end, "
                    "action, protocol (the lab's query).",
        sql=f"""SELECT {_DATE}, interface_id, srcaddr, dstaddr, start, "end", action, protocol
                FROM flow_logs
                WHERE action = 'REJECT' AND log_status = 'OK'
                ORDER BY start, "end", interface_id, srcaddr, dstaddr""",
    ),
    Preset(
        name="icmp",
        summary="ICMP (ping) records (the lab's first query).",
        description="ICMP records by start time, from --ip, else from the stack's traffic instance, else from "
                    "anywhere (the lab's first query).",
        sql=f"""SELECT {_DATE}, interface_id, srcaddr, dstaddr, start, "end", action, packets, bytes
                FROM flow_logs
                WHERE protocol = 1 AND log_status = 'OK'
                ORDER BY start, "end", interface_id, srcaddr, dstaddr""",
        params=(Param("ip", "srcaddr = :ip", required=False,
                      help="Only records from this source address (default: the stack's traffic instance)."),),
    ),
    Preset(
        name="top-talkers",
        aws=("VpcFlowLogsTopTalkers",),
        summary="Source addresses by bytes sent.",
        description="Source addresses by bytes sent, with packets and flow records (default: the top 10).",
        sql="""SELECT srcaddr, sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows
               FROM flow_logs
               WHERE log_status = 'OK'
               GROUP BY srcaddr
               ORDER BY sum(bytes) DESC, srcaddr""",
        limit=10,
    ),
    Preset(
        name="rejected-tcp",
        aws=("VpcFlowLogsRejectedTCPTraffic",),
        summary="REJECTed TCP records with their ports.",
        description="REJECTed TCP records by start time, with source and destination ports.",
        sql=f"""SELECT {_DATE}, interface_id, srcaddr, dstaddr, srcport, dstport, start, "end", packets
                FROM flow_logs
                WHERE action = 'REJECT' AND protocol = 6 AND log_status = 'OK'
                ORDER BY start, "end", interface_id, srcaddr, dstaddr, srcport, dstport""",
    ),
    Preset(
        name="ssh-rdp",
        aws=("VpcFlowLogsSshRdpTraffic",),
        summary="TCP records to port 22 (SSH) or 3389 (RDP).",
        description="TCP records to port 22 (SSH) or 3389 (RDP), accepted or rejected, by start time.",
        sql=f"""SELECT {_DATE}, interface_id, srcaddr, dstaddr, dstport, action, start, "end", packets, bytes
                FROM flow_logs
                WHERE protocol = 6 AND dstport IN (22, 3389) AND log_status = 'OK'
                ORDER BY start, "end", interface_id, srcaddr, dstaddr, dstport""",
    ),
    Preset(
        name="traffic-from",
        aws=("VpcFlowLogsTrafficFrmSrcAddr",),
        summary="Records from an address.",
        description="Records whose source is the address (IP argument or --ip), by start time.",
        sql=f"""SELECT {_DATE}, interface_id, srcaddr, dstaddr, srcport, dstport, protocol, action, start, "end",
                       packets, bytes
                FROM flow_logs
                WHERE log_status = 'OK'
                ORDER BY start, "end", interface_id, dstaddr, srcport, dstport""",
        params=(Param("ip", "srcaddr = :ip", required=True, help="The source address."),),
    ),
    Preset(
        name="traffic-to",
        aws=("VpcFlowLogsTrafficToDstAddr",),
        summary="Records to an address.",
        description="Records whose destination is the address (IP argument or --ip), by start time.",
        sql=f"""SELECT {_DATE}, interface_id, srcaddr, dstaddr, srcport, dstport, protocol, action, start, "end",
                       packets, bytes
                FROM flow_logs
                WHERE log_status = 'OK'
                ORDER BY start, "end", interface_id, srcaddr, srcport, dstport""",
        params=(Param("ip", "dstaddr = :ip", required=True, help="The destination address."),),
    ),
    Preset(
        name="bytes-by-pair",
        aws=("VpcFlowLogsTotalBytesTransferred",),
        summary="Source/destination pairs by bytes.",
        description="Source/destination pairs by bytes, with packets and flow records (default: the top 10).",
        sql="""SELECT srcaddr, dstaddr, sum(bytes) AS bytes, sum(packets) AS packets, count(*) AS flows
               FROM flow_logs
               WHERE log_status = 'OK'
               GROUP BY srcaddr, dstaddr
               ORDER BY sum(bytes) DESC, srcaddr, dstaddr""",
        limit=10,
    ),
    Preset(
        name="accepted-tcp",
        aws=("VpcFlowLogsAcceptedTraffic",),
        summary="ACCEPTed TCP records with their ports.",
        description="TCP records the security groups and network ACLs allowed, by start time, with source and "
                    "destination ports.",
        sql=f"""SELECT {_DATE}, interface_id, srcaddr, dstaddr, srcport, dstport, start, "end", packets, bytes
                FROM flow_logs
                WHERE action = 'ACCEPT' AND protocol = 6 AND log_status = 'OK'
                ORDER BY start, "end", interface_id, srcaddr, dstaddr, srcport, dstport""",
    ),
    Preset(
        name="admin-ports",
        aws=("VpcFlowLogsAdminPortTraffic",),
        summary="Addresses serving administrative ports, by bytes.",
        description=f"The addresses serving administrative ports ({_ADMIN}) by bytes to and from them: the "
                    "destination of a record to such a port, else the source of one from it (default: the top 10).",
        sql=f"""SELECT CASE WHEN dstport IN ({_ADMIN}) THEN dstaddr ELSE srcaddr END AS ip, {_TOTALS}
                FROM flow_logs
                WHERE (dstport IN ({_ADMIN}) OR srcport IN ({_ADMIN})) AND log_status = 'OK'
                GROUP BY 1
                ORDER BY sum(bytes) DESC, 1""",
        limit=10,
    ),
    Preset(
        name="ipv4-bytes",
        aws=("VpcFlowLogsIPv4Traffic",),
        summary="Total bytes of IPv4 traffic.",
        description="Total bytes, packets and flow records of IPv4 traffic (source address without ':').",
        sql=f"""SELECT {_TOTALS}
                FROM flow_logs
                WHERE srcaddr LIKE '%.%' AND srcaddr NOT LIKE '%:%' AND log_status = 'OK'""",
    ),
    Preset(
        name="ipv6-bytes",
        aws=("VpcFlowLogsIPv6Traffic",),
        summary="Total bytes of IPv6 traffic.",
        description="Total bytes, packets and flow records of IPv6 traffic (source address with ':').",
        sql=f"""SELECT {_TOTALS}
                FROM flow_logs
                WHERE srcaddr LIKE '%:%' AND log_status = 'OK'""",
    ),
    Preset(
        name="top-talkers-packet-level",
        aws=("VpcFlowLogsTopTalkersPacketLevel",),
        summary="Packet-level source addresses by bytes (v3+ field pkt-srcaddr).",
        description="Packet-level source addresses (pkt-srcaddr: the original source through a NAT gateway or "
                    "load balancer) by bytes, with packets and flow records; '-' left out (default: the top 10).",
        sql=f"""SELECT pkt_srcaddr, {_TOTALS}
                FROM flow_logs
                WHERE pkt_srcaddr <> '-' AND log_status = 'OK'
                GROUP BY pkt_srcaddr
                ORDER BY sum(bytes) DESC, pkt_srcaddr""",
        limit=10,
    ),
    *(Preset(
        name=f"top-{kind}s",
        aws=(aws,),
        summary=f"{kind.capitalize()}s by bytes (v3+ field {column.replace('_', '-')}).",
        description=f"{kind.capitalize()} IDs by bytes, with packets and flow records; '-' (none) left out "
                    "(default: the top 10).",
        sql=f"""SELECT {column}, {_TOTALS}
                FROM flow_logs
                WHERE {column} <> '-' AND log_status = 'OK'
                GROUP BY {column}
                ORDER BY sum(bytes) DESC, {column}""",
        limit=10,
    ) for kind, column, aws in (("instance", "instance_id", "VpcFlowLogsTopTalkingInstances"),
                                ("subnet", "subnet_id", "VpcFlowLogsTopTalkingSubnets"))),
    Preset(
        name="tcp-from",
        aws=("VpcFlowLogsTopTCPTraffic",),
        summary="TCP records from an address.",
        description="TCP records whose source is the address (IP argument or --ip), by start time.",
        sql=f"""SELECT {_DATE}, interface_id, srcaddr, dstaddr, srcport, dstport, action, start, "end",
                       packets, bytes
                FROM flow_logs
                WHERE protocol = 6 AND log_status = 'OK'
                ORDER BY start, "end", interface_id, dstaddr, srcport, dstport""",
        params=(Param("ip", "srcaddr = :ip", required=True, help="The source address."),),
    ),
    Preset(
        name="bytes-by-pair-packet-level",
        aws=("VpcFlowLogsTotalBytesTransferredPacketLevel",),
        summary="Packet-level source/destination pairs by bytes (v3+ fields pkt-srcaddr, pkt-dstaddr).",
        description="Packet-level source/destination pairs (pkt-srcaddr, pkt-dstaddr) by bytes, with packets and "
                    "flow records; '-' left out (default: the top 10).",
        sql=f"""SELECT pkt_srcaddr, pkt_dstaddr, {_TOTALS}
                FROM flow_logs
                WHERE pkt_srcaddr <> '-' AND pkt_dstaddr <> '-' AND log_status = 'OK'
                GROUP BY pkt_srcaddr, pkt_dstaddr
                ORDER BY sum(bytes) DESC, pkt_srcaddr, pkt_dstaddr""",
        limit=10,
    ),
)

#: The presets of the built-in detections (DESIGN.md "Detections"): the same traffic, over S3.
DETECTION_PRESETS: tuple[Preset, ...] = (
    Preset(
        name="port-scan",
        summary="Sources REJECTed on many distinct destination ports (detection top-rejected-sources).",
        description="Sources whose TCP/UDP flows were REJECTed on at least --min-ports distinct destination ports "
                    "(default 10): the port scans of the top-rejected-sources detection, with their flows, "
                    "targets and first/last record.",
        sql="""SELECT srcaddr, count(DISTINCT dstport) AS ports, count(*) AS flows, count(DISTINCT dstaddr) AS targets,
                      min(start) AS first_start, max("end") AS last_end
               FROM flow_logs
               WHERE action = 'REJECT' AND protocol IN (6, 17) AND log_status = 'OK'
               GROUP BY srcaddr
               ORDER BY count(DISTINCT dstport) DESC, count(*) DESC, srcaddr""",
        params=(Param("min_ports", "count(DISTINCT dstport) >= :min_ports", required=False, kind="number",
                      default="10", clause="having",
                      help="Only sources rejected on at least N distinct destination ports (default 10)."),),
    ),
    Preset(
        name="ssh-rdp-brute-force",
        summary="Sources with many TCP flows to SSH (22) or RDP (3389) (detection ssh-rdp-probe).",
        description="Sources with at least --min-flows TCP flows to port 22 or 3389 (default 10), accepted or "
                    "rejected: the SSH/RDP brute force of the ssh-rdp-probe detection, with the addresses tried.",
        sql=f"""SELECT srcaddr, count(*) AS flows, count(DISTINCT dstaddr) AS targets,
                       sum(CASE WHEN action = 'ACCEPT' THEN 1 ELSE 0 END) AS accepted,
                       sum(CASE WHEN action = 'REJECT' THEN 1 ELSE 0 END) AS rejected,
                       min(start) AS first_start, max("end") AS last_end
                FROM flow_logs
                WHERE protocol = 6 AND dstport IN ({", ".join(map(str, SSH_RDP_PORTS))}) AND log_status = 'OK'
                GROUP BY srcaddr
                ORDER BY count(*) DESC, srcaddr""",
        params=(Param("min_flows", "count(*) >= :min_flows", required=False, kind="number", default="10",
                      clause="having", help="Only sources with at least N flows to 22/3389 (default 10)."),),
    ),
    Preset(
        name="egress-by-destination",
        summary="Bytes from the VPC to addresses outside it, by destination (detection egress-spike).",
        description="Bytes, packets and flows from the VPC's addresses to addresses outside it, by destination "
                    "(the VPC block: --vpc-cidr, default the stack's), with the VPC sources that sent them "
                    "(default: the top 10): where the egress of the egress-spike detection goes.",
        sql=f"""SELECT dstaddr, {_TOTALS}, count(DISTINCT srcaddr) AS sources
                FROM flow_logs
                WHERE log_status = 'OK'
                GROUP BY dstaddr
                ORDER BY sum(bytes) DESC, dstaddr""",
        params=(Param("vpc_cidr", f"{_in_block('srcaddr')} AND NOT coalesce({_in_block('dstaddr')}, false)",
                      required=True, kind="cidr", help="The VPC's IPv4 block (default: the stack's)."),),
        limit=10,
    ),
)
PRESETS = PRESETS + DETECTION_PRESETS

BY_NAME: dict[str, Preset] = {p.name: p for p in PRESETS}


def validate_cidr(text: str) -> "ipaddress.IPv4Network":
    try:
        return ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError:
        raise UsageError(f"{text!r} is not an IPv4 CIDR block (such as 10.0.0.0/24)") from None


def validate_number(name: str, text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value < 1:
        raise UsageError(f"--{name.replace('_', '-')} must be a whole number >= 1, got {text!r}")
    return value


def _bind(param: Param, value: str, placeholders: bool = False) -> dict[str, "exp.Expr"]:
    """The placeholders of ``param``'s condition, for ``value``."""
    from sqlglot import exp

    if param.kind == "number":
        return {param.name: exp.Literal.number(validate_number(param.name, value))}
    if param.kind == "cidr":
        block = validate_cidr(value)
        return {"lo": exp.Literal.number(int(block.network_address)),
                "hi": exp.Literal.number(int(block.broadcast_address))}
    return {param.name: exp.Literal.string(validate_ip(value))}


def validate_ip(text: str) -> str:
    """The address in canonical form; UsageError (naming the input) when it is not an IP address."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise UsageError(f"{text!r} is not an IPv4 or IPv6 address") from None


def check_bounds(sql: str) -> None:
    """UsageError when the statement is larger, longer or more deeply nested than MAX_SQL_*."""
    size = len(sql.encode("utf-8", "surrogatepass"))
    if size > MAX_SQL_BYTES:
        raise UsageError(f"the SQL statement is {size:,} bytes; at most {MAX_SQL_BYTES:,} (Athena's limit)")
    tokens = depth = 0
    for match in _TOKEN.finditer(sql):
        tokens += 1
        text = match.group()
        if text in ("(", "["):
            depth += 1
            if depth > MAX_SQL_DEPTH:
                raise UsageError(f"the SQL statement nests parentheses more than {MAX_SQL_DEPTH} levels deep; "
                                 f"at most {MAX_SQL_DEPTH}", hint="use WITH to name the inner queries")
        elif text in (")", "]"):
            depth -= 1
    if tokens > MAX_SQL_TOKENS:
        raise UsageError(f"the SQL statement has {tokens:,} tokens; at most {MAX_SQL_TOKENS:,}")


@contextlib.contextmanager
def nesting_guard() -> Iterator[None]:
    """sqlglot recurses once per level of an expression: too deep a statement is a UsageError."""
    try:
        yield
    except RecursionError:
        raise UsageError("the SQL statement is nested too deeply to parse",
                         hint="use WITH to name the inner queries") from None


def parse(sql: str) -> "exp.Expr":
    """One Athena SQL statement as a sqlglot tree; UsageError with sqlglot's message otherwise."""
    import sqlglot
    from sqlglot.errors import ParseError

    check_bounds(sql)
    try:
        with nesting_guard():
            statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except ParseError as exc:
        raise UsageError(f"not valid Athena SQL: {_first_error(exc)}") from None
    if len(statements) != 1:
        raise UsageError(f"give exactly one SQL statement (got {len(statements)})")
    return statements[0]


def build(preset: Preset, *, table: str, window: "TimeWindow | None" = None,
          partitions: tuple[str, str] | None = None, params: dict[str, str | None] | None = None,
          limit: int | None = None, columns: Sequence[str] | None = None, database: str | None = None,
          placeholders: bool = False) -> str:
    """The preset as one Athena SQL statement over ``table``, restricted to the window.

    ``columns`` (the table's columns) lets a preset that reads a column the record format lacks
    fail here, before Athena is asked (and paid). ``database`` qualifies the table name.
    With ``placeholders`` a required address left out becomes an Athena execution parameter ``?``.
    """
    from sqlglot import exp

    tree = parse(preset.sql)
    if columns is not None:
        _check_columns(preset, tree, columns)
    conditions = list(_where(tree))
    having = [tree.args["having"].this] if tree.args.get("having") else []
    for param in preset.params:
        value = (params or {}).get(param.name)
        if value is None:
            value = param.default
        if value is not None:
            bound: dict[str, exp.Expr] = _bind(param, value)
        elif param.required and placeholders and param.kind != "cidr":
            bound = {param.name: exp.Placeholder()}
        elif param.required:
            what = {"cidr": "the VPC's CIDR block", "number": "a number"}.get(param.kind, "an address")
            raise UsageError(f"preset {preset.name} needs {what} ({param.option})")
        else:
            continue
        condition = exp.replace_placeholders(parse_condition(param.condition), **bound)
        (having if param.clause == "having" else conditions).append(condition)
    conditions += window_conditions(window, partitions)
    tree.set("where", exp.Where(this=exp.and_(*conditions)))
    if having:
        tree.set("having", exp.Having(this=exp.and_(*having)))
    _rename_table(tree, table, database)
    final_limit = limit if limit is not None else preset.limit
    if final_limit is not None:
        assert isinstance(tree, exp.Query)
        tree = tree.limit(final_limit)
    return tree.sql(dialect="athena", pretty=True)


def named_queries(fmt: "RecordFormat", database: str, table: str,
                  vpc_cidr: str | None = None) -> dict[str, tuple[str, str]]:
    """One Athena named query per preset, for the console: name -> (description, SQL).

    The table is qualified with the database; a required address is an execution parameter
    (``?``, asked for when the query runs), an optional one is left out (a number takes its default); the
    VPC block is ``vpc_cidr`` (the preset is left out without it); presets reading a column the record
    format lacks are skipped.
    """
    queries: dict[str, tuple[str, str]] = {}
    for preset in PRESETS:
        try:
            sql = build(preset, table=table, database=database, columns=fmt.columns, placeholders=True,
                        params={"vpc_cidr": vpc_cidr})
        except UsageError:
            continue
        queries[f"flowwatch-{preset.name}"] = (preset.description, sql)
    return queries


def scope_user_sql(sql: str, *, table: str, database: str, window: "TimeWindow | None" = None,
                   partitions: tuple[str, str] | None = None, limit: int | None = None) -> str:
    """``query sql``: the user's statement, each reference to the table restricted to the window.

    ``FROM flow_logs f`` becomes ``FROM (SELECT * FROM flow_logs WHERE dt BETWEEN ... AND
    start >= ...) AS f``. Statements sqlglot cannot parse as queries (``SHOW ...``) pass through
    unchanged when there is no window and no limit to apply.
    """
    from sqlglot import exp

    tree = parse(sql)
    if not isinstance(tree, exp.Query):
        if window is not None or limit is not None:
            raise UsageError("--since/--from/--to/--limit apply to queries (SELECT/WITH) only")
        return sql.strip().rstrip(";")
    conditions = window_conditions(window, partitions)
    if conditions:
        for ref in list(tree.find_all(exp.Table)):
            if _is_flow_table(ref, table, database):
                ref.replace(_scoped(ref, conditions))
    if limit is not None:
        tree = tree.limit(limit)
    with nesting_guard():
        return tree.sql(dialect="athena", pretty=True)


def is_query(sql: str) -> bool:
    """Whether the Athena statement is a read-only query (SELECT/WITH/UNION ..., nothing that writes or
    sets anything inside), as the local engine needs."""
    from sqlglot import exp

    tree = parse(sql)
    writes = tuple(getattr(exp, name) for name in _WRITES)
    return isinstance(tree, exp.Query) and not any(isinstance(node, writes) for node in tree.walk())


def window_conditions(window: "TimeWindow | None", partitions: tuple[str, str] | None) -> list[Any]:
    """``dt BETWEEN lo AND hi`` (partition) and ``start >= a AND start < b`` (records) as sqlglot nodes."""
    from sqlglot import exp

    from flowwatch.records import PARTITION_KEY

    conditions: list[Any] = []
    if partitions is not None:
        lo, hi = partitions
        conditions.append(exp.column(PARTITION_KEY).between(exp.Literal.string(lo), exp.Literal.string(hi)))
    if window is not None:
        conditions.append(exp.column("start") >= exp.Literal.number(window.start_epoch))
        conditions.append(exp.column("start") < exp.Literal.number(window.end_epoch))
    return conditions


def parse_condition(text: str) -> "exp.Expr":
    import sqlglot

    return sqlglot.parse_one(text, read="athena")


def columns_read(preset: Preset, tree: "exp.Expr | None" = None) -> frozenset[str]:
    """The table columns the preset reads (its SQL and its parameters' conditions; no partition column)."""
    from sqlglot import exp

    from flowwatch.records import PARTITION_KEYS

    conditions = [parse_condition(p.condition) for p in preset.params]
    read = {c.name for node in (tree or parse(preset.sql), *conditions) for c in node.find_all(exp.Column)}
    return frozenset(read - set(PARTITION_KEYS))


def _check_columns(preset: Preset, tree: "exp.Expr", columns: Sequence[str]) -> None:
    missing = sorted(columns_read(preset, tree) - set(columns))
    if missing:
        raise UsageError(f"preset {preset.name} reads {', '.join(missing)}, which the record format lacks "
                         f"(its columns: {', '.join(columns)})",
                         hint="add those fields to flow_logs.format, or write the query yourself with `query sql`")


def _where(tree: "exp.Expr") -> list["exp.Expr"]:
    from sqlglot import exp

    where = tree.args.get("where")
    if where is None:
        return []
    return list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]


def _rename_table(tree: "exp.Expr", table: str, database: str | None = None) -> None:
    from sqlglot import exp

    for ref in tree.find_all(exp.Table):
        if ref.name == TEMPLATE_TABLE and not ref.db:
            ref.set("this", exp.to_identifier(table))
            if database:
                ref.set("db", exp.to_identifier(database))


def _is_flow_table(ref: "exp.Table", table: str, database: str) -> bool:
    return ref.name.lower() == table.lower() and (not ref.db or ref.db.lower() == database.lower())


def _scoped(ref: "exp.Table", conditions: list[Any]) -> "exp.Expr":
    from sqlglot import exp

    alias = ref.alias or ref.name
    bare = ref.copy()
    bare.set("alias", None)
    return exp.select("*").from_(bare).where(exp.and_(*conditions)).subquery(alias)


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None) or []
    if errors:
        err = errors[0]
        return f"{err.get('description', exc)} (line {err.get('line')}, column {err.get('col')})"
    return str(exc).splitlines()[0]
