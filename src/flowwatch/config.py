"""YAML config -> a frozen, validated ``Config`` (pydantic), before any AWS call.

Every key is optional but ``stack``; the defaults reproduce the lab (DESIGN.md "Config").
Errors become one ``ConfigError`` line naming the key, what was given and what is allowed (exit 2).
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from flowwatch.errors import ConfigError, shown

# CloudWatch Logs PutRetentionPolicy: the only values AWS accepts.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)
NAME_KINDS = ("vpc", "subnet", "igw", "nacl", "log_group", "role", "bucket", "flow_log_cwl", "flow_log_s3",
              "topic", "database", "table", "workgroup", "instance", "security_group", "dashboard")
STACK_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,22}[a-z0-9])?$")
REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
RULE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
METRIC_RE = re.compile(r"^[^:\s][^\s]{0,254}$")
NAMESPACE_RE = re.compile(r"^[0-9A-Za-z.\-_/#:]{1,255}$")
# What each service accepts in a name (the EC2 kinds are Name tags: any 1-255 characters).
NAME_RULES = {
    "role": (re.compile(r"[\w+=,.@-]{1,64}"), "an IAM role name is 1-64 of letters, digits and + = , . @ _ -"),
    "log_group": (re.compile(r"[\w./#-]{1,512}"), "a log group name is 1-512 of letters, digits and . - _ / #"),
    "topic": (re.compile(r"[A-Za-z0-9_-]{1,256}"), "an SNS topic name is 1-256 of letters, digits, _ and -"),
    "workgroup": (re.compile(r"[A-Za-z0-9._-]{1,128}"), "an Athena workgroup name is 1-128 of letters, digits, "
                                                        ". _ and -"),
    "dashboard": (re.compile(r"[A-Za-z0-9_-]{1,255}"), "a CloudWatch dashboard name is 1-255 of letters, digits, "
                                                       "_ and -"),
}
# Values a flow log writes in these fields ('-' when missing); a typo here would silently never match.
FIELD_VALUES = {"action": ("ACCEPT", "REJECT"), "log-status": ("OK", "NODATA", "SKIPDATA")}


class _FieldError(ValueError):
    """A model-level check that belongs to one field: the error line names ``<model path>.<field>``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _network(value: str, field: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        raise ValueError(f"{shown(value)} is not an IPv4 CIDR block (e.g. 10.0.0.0/24)") from None
    if str(net) != value:
        raise ValueError(f"{value} has host bits set; did you mean {net}?")
    if not 16 <= net.prefixlen <= 28:
        raise ValueError(f"{value}: AWS allows /16 to /28 for a {field}, got /{net.prefixlen}")
    return net


class Network(_Model):
    vpc_id: str | None = None
    vpc_cidr: str = "10.0.0.0/24"
    subnet_cidr: str = "10.0.0.0/26"
    availability_zone: str | None = None  # default: "<region>a"

    @field_validator("vpc_id")
    @classmethod
    def _vpc_id(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"vpc-[0-9a-f]{8,17}", v):
            raise ValueError(f"{shown(v)} is not a VPC id (vpc- and 8 or 17 hex digits)")
        return v

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, v: str) -> str:
        _network(v, "VPC")
        return v

    @field_validator("subnet_cidr")
    @classmethod
    def _subnet_cidr(cls, v: str) -> str:
        _network(v, "subnet")
        return v

    @model_validator(mode="after")
    def _subnet_inside(self) -> "Network":
        if self.vpc_id is None:
            vpc, sub = ipaddress.IPv4Network(self.vpc_cidr), ipaddress.IPv4Network(self.subnet_cidr)
            if not sub.subnet_of(vpc):
                raise _FieldError("subnet_cidr", f"{sub} is not inside vpc_cidr {vpc}; pick a block of {vpc} "
                                                  f"(e.g. {next(vpc.subnets(new_prefix=max(vpc.prefixlen, 26)))})")
        return self


class FlowLogs(_Model):
    format: str | list[str] = "v2"
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = "ALL"
    aggregation_seconds: Literal[60, 600] = 60
    retention_days: int | None = 30
    s3_file_format: Literal["plain-text", "parquet"] = "plain-text"
    hive_partitions: bool = False
    per_hour_partitions: bool = False

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, v: int | None) -> int | None:
        if v is not None and v not in RETENTION_DAYS:
            allowed = ", ".join(map(str, RETENTION_DAYS))
            raise ValueError(f"{v} is not a CloudWatch Logs retention; allowed: {allowed}, or null (never expire)")
        return v

    @field_validator("format")
    @classmethod
    def _format(cls, v: str | list[str]) -> str | list[str]:
        from flowwatch.records import RecordFormat

        RecordFormat.parse(v)  # FormatError (a ValueError) names the field
        return v


class Nacl(_Model):
    deny_icmp_egress: bool | None = None  # default: on, or off when adopting an existing VPC


def default_metric(rule_name: str) -> str:
    """A rule's own metric name: ``ping-deny`` -> ``Ping-Deny`` (the lab's metric for the lab's rule)."""
    return "-".join(part.capitalize() for part in rule_name.split("-"))


def default_namespace(stack: str) -> str:
    """One namespace per stack, so two stacks never feed each other's alarms (DESIGN.md "Detections")."""
    return f"flowwatch/{stack}"


RULE_KINDS = ("threshold", "anomaly", "contributors")
#: per kind: the default period (metric filters publish 1-minute metrics; anomaly and contributor counts are
#: steadier over 5 minutes) and threshold (None: the kind has none, an anomaly band replaces it)
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "threshold": {"period": 60, "threshold": 1.0},
    "anomaly": {"period": 300, "band": 2.0},
    "contributors": {"period": 300, "threshold": 25.0, "keys": ["srcaddr"]},
}
#: which keys only some kinds take
KIND_KEYS = {"band": ("anomaly",), "keys": ("contributors",), "threshold": ("threshold", "contributors"),
             "pattern": ("threshold", "anomaly"), "metric": ("threshold", "anomaly")}
MAX_BAND = 100.0


class AlertRule(_Model):
    """One alert rule (DESIGN.md "Detections"). ``kind``: ``threshold`` (a metric filter and a static alarm, the
    lab's), ``anomaly`` (a metric filter, an anomaly detector on its metric, an alarm outside the band of width
    ``band``) or ``contributors`` (a Contributor Insights rule over the log group keyed by ``keys``, an alarm
    when the top contributor reaches ``threshold`` in one period). ``value``: null = count records, or a
    numeric field to sum (``bytes``). ``metric`` defaults to one of the rule's own (``default_metric``);
    ``namespace`` to the stack's (``default_namespace``), filled in by ``Config`` (a rule alone does not know
    its stack). Defaults that depend on the kind: :data:`KIND_DEFAULTS`."""

    name: str
    kind: Literal["threshold", "anomaly", "contributors"] = "threshold"
    match: dict[str, str | int | list[str | int]] | None = None
    pattern: str | None = None
    metric: str = ""
    namespace: str = "flowwatch"
    value: str | None = None
    threshold: float | None = None
    band: float | None = None
    keys: list[str] | None = None
    period: int = 60
    evaluation_periods: int = 1

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not RULE_NAME_RE.fullmatch(v):
            raise ValueError(f"{shown(v)}: use 1-40 lowercase letters, digits and '-'")
        return v

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kind = data.get("kind", "threshold")
        if kind not in RULE_KINDS:
            return data                                  # the Literal reports it
        for key, kinds in KIND_KEYS.items():
            if data.get(key) is not None and kind not in kinds:
                raise _FieldError(key, f"not a key of {_a(kind)} rule (it belongs to {' and '.join(kinds)} rules)")
        filled = {k: v for k, v in KIND_DEFAULTS[kind].items() if data.get(k) is None}
        if data.get("metric") is None and isinstance(data.get("name"), str) and kind != "contributors":
            filled["metric"] = default_metric(data["name"])
        return {**data, **filled}

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v and not METRIC_RE.fullmatch(v):     # "" only for contributors (their alarm reads INSIGHT_RULE_METRIC)
            raise ValueError(f"{shown(v)}: a CloudWatch metric name is 1-255 characters, no spaces, not starting "
                             "with ':'")
        return v

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        if not NAMESPACE_RE.fullmatch(v) or v.startswith((":", "AWS/")):
            raise ValueError(f"{shown(v)}: a custom namespace is 1-255 of A-Z a-z 0-9 . - _ / # :, not starting "
                             "with ':' or 'AWS/'")
        return v

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError(f"{v:g}: must be > 0 (the alarm fires when the Sum reaches it; the metric filter's "
                             "default value is 0, so a threshold <= 0 would keep the alarm in ALARM)")
        return None if v is None else float(v)

    @field_validator("band")
    @classmethod
    def _band(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v <= MAX_BAND:
            raise ValueError(f"{v:g}: the band's width (standard deviations, ANOMALY_DETECTION_BAND's second "
                             f"argument) must be > 0 and at most {MAX_BAND:g}")
        return None if v is None else float(v)

    @field_validator("keys")
    @classmethod
    def _keys(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not 1 <= len(v) <= 4:
                raise ValueError(f"{len(v)} keys: Contributor Insights takes 1-4 fields as a contributor's keys")
            if len(set(v)) != len(v):
                raise ValueError(f"a field is named twice: {', '.join(v)}")
        return v

    @field_validator("period")
    @classmethod
    def _period(cls, v: int) -> int:
        if v < 60 or v % 60:
            raise ValueError(f"{v}: must be a positive multiple of 60 seconds: 60, 120, ... (metric filters "
                             "publish 1-minute metrics)")
        return v

    @field_validator("evaluation_periods")
    @classmethod
    def _periods(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"{v}: must be >= 1")
        return v

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is not None:
            from flowwatch.patterns import compile_pattern

            compile_pattern(v)  # PatternError (a ValueError) says where
        return v

    @model_validator(mode="after")
    def _one_matcher(self) -> "AlertRule":
        if self.kind == "contributors":
            if self.match is None:     # every record counts: no filter
                object.__setattr__(self, "match", {})
        elif not self.metric:
            raise _FieldError("metric", "a metric name is needed (1-255 characters)")
        elif (self.match is None) == (self.pattern is None):
            raise ValueError("give exactly one of match: {field: value} or pattern: '[...]'")
        if self.pattern is not None and self.value is not None:
            raise _FieldError("value", "with a pattern, the value field is not known; name it in a match rule, "
                                       "or write the metric filter's $field yourself")
        limit = 604800 if self.period >= 3600 else 86400
        if self.period * self.evaluation_periods > limit:
            raise _FieldError("evaluation_periods", f"period x evaluation_periods = "
                              f"{self.period * self.evaluation_periods} s; CloudWatch allows at most {limit} s")
        return self


#: The lab's one rule (rejected ICMP, metric Ping-Deny); its namespace is the stack's (``Config`` sets it).
DEFAULT_RULE = AlertRule(name="ping-deny", match={"protocol": 1, "action": "REJECT"}, threshold=1, period=60,
                         evaluation_periods=1)


class Alerts(_Model):
    """``rules``: the configured rules, then the built-in ``detections`` expanded into rules (flowwatch.detections;
    a name, or a mapping of the name and the knobs it overrides)."""

    email: str | None = None
    rules: list[AlertRule] = Field(default_factory=lambda: [DEFAULT_RULE])
    detections: list[str | dict[str, Any]] = Field(default_factory=list)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not EMAIL_RE.fullmatch(v):
            raise ValueError(f"{shown(v)} is not an e-mail address (name@example.com)")
        return v

    @field_validator("rules")
    @classmethod
    def _rules(cls, v: list[AlertRule]) -> list[AlertRule]:
        if not v:
            raise ValueError("at least one rule is needed")
        names = [r.name for r in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique: {', '.join(dupes)}")
        return v

    @model_validator(mode="after")
    def _expand(self) -> "Alerts":
        from flowwatch.detections import BUILTIN, definition

        taken = {r.name for r in self.rules}
        expanded: list[AlertRule] = []
        for i, entry in enumerate(self.detections):
            where = f"detections[{i}]"
            overrides = dict(entry) if isinstance(entry, dict) else {}
            name = entry if isinstance(entry, str) else overrides.pop("name", None)
            if not isinstance(name, str):
                raise _FieldError(where, "a built-in detection's name, or a mapping with its name and the knobs "
                                         f"to override; built-ins: {', '.join(BUILTIN)}")
            if name not in BUILTIN:
                raise _FieldError(where, f"{shown(name)} is not a built-in detection"
                                         f"{_did_you_mean(name, BUILTIN)}; built-ins: {', '.join(BUILTIN)}")
            if name in taken:
                raise _FieldError(where, f"{name} is turned on twice (or is also the name of a rule under rules); "
                                         "override its knobs here instead: - {name: " + name + ", threshold: ...}")
            taken.add(name)
            try:
                expanded.append(AlertRule.model_validate(definition(name, overrides)))
            except ValueError as exc:       # pydantic's ValidationError too: one line, as every config error
                raise _FieldError(where, _first_error(exc)) from None
        if expanded:
            object.__setattr__(self, "rules", [*self.rules, *expanded])
        return self

    @property
    def detection_names(self) -> tuple[str, ...]:
        """The built-in detections turned on (their rules are in ``rules``)."""
        return tuple(d if isinstance(d, str) else str(d.get("name")) for d in self.detections)


def _a(word: str) -> str:
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"


def _first_error(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(_describe(e) for e in exc.errors()[:1])
    return str(exc)


class Config(_Model):
    stack: str
    region: str = "us-east-1"
    network: Network = Field(default_factory=Network)
    flow_logs: FlowLogs = Field(default_factory=FlowLogs)
    nacl: Nacl = Field(default_factory=Nacl)
    alerts: Alerts = Field(default_factory=Alerts, validate_default=True)
    dashboard: bool = True               # a CloudWatch dashboard of the stack (steps/dashboard.py)
    names: dict[str, str] = Field(default_factory=dict)

    @field_validator("alerts")
    @classmethod
    def _stack_namespace(cls, v: Alerts, info: ValidationInfo) -> Alerts:
        """A rule without ``namespace`` (the default rule too) gets the stack's: ``flowwatch/<stack>``."""
        stack = info.data.get("stack")
        if stack is None:                      # the stack itself is wrong: that error is reported
            return v
        ns = default_namespace(stack)
        rules = [r if "namespace" in r.model_fields_set else r.model_copy(update={"namespace": ns}) for r in v.rules]
        return v.model_copy(update={"rules": rules})

    @field_validator("stack")
    @classmethod
    def _stack(cls, v: str) -> str:
        if not STACK_RE.fullmatch(v):
            raise ValueError(f"{shown(v)}: use 1-24 lowercase letters, digits and '-', starting and ending with a "
                             "letter or digit (it becomes part of S3, IAM and Glue names)")
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if not REGION_RE.fullmatch(v):
            close = _did_you_mean(v, _known_regions(), cutoff=0.9)
            raise ValueError(f"{shown(v)} is not an AWS region{close or ' (e.g. us-east-1)'}")
        known = _known_regions()
        if known and v not in known:     # well-formed, but no partition has it: a typo, or made up
            close = _did_you_mean(v, known, cutoff=0.8)
            raise ValueError(f"{shown(v)} is not an AWS region{close}; allowed: the {len(known)} regions of "
                             f"botocore's partition data ({', '.join(_partitions())}), e.g. us-east-1, eu-west-1")
        return v

    @field_validator("names")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        for kind, name in v.items():
            if kind not in NAME_KINDS:
                raise _FieldError(kind, f"unknown kind{_did_you_mean(kind, NAME_KINDS)}; "
                                        f"allowed: {', '.join(NAME_KINDS)}")
            if not name or len(name) > 255:
                raise _FieldError(kind, "a name of 1-255 characters is needed")
            if kind in NAME_RULES and not NAME_RULES[kind][0].fullmatch(name):
                raise _FieldError(kind, f"{shown(name)}: {NAME_RULES[kind][1]}")
        if "bucket" in v:
            b = v["bucket"]
            if not BUCKET_RE.fullmatch(b) or ".." in b or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", b) \
                    or b.startswith("xn--") or b.endswith("-s3alias"):
                raise _FieldError("bucket", f"{shown(b)} is not a valid S3 bucket name (3-63 lowercase letters, "
                                            "digits, '.', '-', starting and ending with a letter or digit)")
        for kind in ("database", "table"):
            if kind in v and not re.fullmatch(r"[a-z0-9_]{1,255}", v[kind]):
                raise _FieldError(kind, f"{shown(v[kind])}: Glue names are lowercase letters, digits and '_'")
        return v

    @model_validator(mode="after")
    def _zone(self) -> "Config":
        az = self.network.availability_zone
        if az is None or re.fullmatch(re.escape(self.region) + r"(?:-[a-z]+-\d)?[a-z]", az):
            return self
        if REGION_RE.fullmatch(az):
            other = "" if az == self.region else f", and not this stack's region {self.region}"
            raise _FieldError("network.availability_zone", f"{shown(az)} is a region, not an availability zone{other}; "
                              f"did you mean {self.region}a?")
        raise _FieldError("network.availability_zone",
                          f"{shown(az)} is not in region {self.region} (e.g. {self.region}a)")

    @model_validator(mode="after")
    def _matches(self) -> "Config":
        """Each rule names fields of the configured record format, with values they can hold: its ``match``
        (as a filter pattern, or as Contributor Insights filters), its ``keys`` and its ``value``."""
        from flowwatch.matching import MatchError, insight_filters
        from flowwatch.records import FIELDS, FormatError

        fmt = self.record_format
        # an adopted VPC's block is known at plan time only: check the shape with the configured one
        vpc_cidr = self.network.vpc_cidr
        builtin = {name: j for j, name in enumerate(self.alerts.detection_names)}
        configured = len(self.alerts.rules) - len(builtin)     # the expanded detections come last
        for i, rule in enumerate(self.alerts.rules):
            where = f"alerts.rules[{i}]" if i < configured else f"alerts.detections[{builtin[rule.name]}]"
            for key in [*(rule.keys or ()), *([rule.value] if rule.value else [])]:
                try:
                    spec = FIELDS[fmt.fields[fmt.index(key)]]
                except FormatError as exc:
                    raise _FieldError(where, f"{'value' if key == rule.value else 'keys'}: {exc}") from None
                if key == rule.value and not spec.is_int:
                    raise _FieldError(f"{where}.value", f"{spec.name} holds text; value names a numeric field to "
                                      "sum (bytes, packets, ...)")
            if rule.match is None:
                continue
            try:
                if rule.kind == "contributors":
                    conds = fmt.match_conditions(rule.match, vpc_cidr=vpc_cidr)
                    insight_filters(list(conds.values()), {f: f for f in fmt.fields})
                else:
                    fmt.filter_pattern(rule.match, vpc_cidr=vpc_cidr)
            except (FormatError, MatchError) as exc:
                raise _FieldError(f"{where}.match", str(exc)) from None
            for key, value in rule.match.items():
                name = fmt.fields[fmt.index(key)]
                allowed = FIELD_VALUES.get(name)
                for item in value if isinstance(value, list) else [value]:
                    plain = str(item).removeprefix("!=").removeprefix("=").strip()
                    if allowed and plain not in (*allowed, "-", "*"):
                        raise _FieldError(f"{where}.match.{key}", f"{shown(item)} never appears in {name}; "
                                          f"expected {' or '.join(allowed)}")
        return self

    # ---- derived values (no AWS call) ----
    @property
    def availability_zone(self) -> str:
        return self.network.availability_zone or f"{self.region}a"

    @property
    def adopted(self) -> bool:
        return self.network.vpc_id is not None

    @property
    def deny_icmp_egress(self) -> bool:
        flag = self.nacl.deny_icmp_egress
        return (not self.adopted) if flag is None else flag

    @property
    def record_format(self):  # -> flowwatch.records.RecordFormat
        from flowwatch.records import RecordFormat

        return RecordFormat.parse(self.flow_logs.format)


@functools.cache
def _partition_data() -> list[dict[str, Any]]:
    """botocore's bundled partition data (partitions.json: every partition and its regions; no AWS call)."""
    try:
        import botocore.loaders

        return list(botocore.loaders.create_loader().load_data("partitions")["partitions"])
    except Exception:   # noqa: BLE001 (without the data, regions are checked by their shape only)
        return []


def _known_regions() -> list[str]:
    """Every region of every partition botocore knows (aws, aws-cn, aws-us-gov, the ISO ones, ...).

    A region is valid only if listed: a partition's ``regionRegex`` alone would let a made-up
    ``us-east-9`` through. A region newer than the installed botocore needs a botocore upgrade."""
    return sorted({r for p in _partition_data() for r in p.get("regions", {}) if not r.endswith("-global")})


def _partitions() -> list[str]:
    return [str(p["id"]) for p in _partition_data()]


def _did_you_mean(word: str, choices: Any, cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        for candidate in (ann, *getattr(ann, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
            inner = getattr(candidate, "__args__", ())
            found = [c for c in inner if isinstance(c, type) and issubclass(c, BaseModel)]
            if found:
                model = found[0]
                break
        else:
            return None
    return model


def _path(loc: tuple[Any, ...]) -> str:
    """``("alerts", "rules", 0, "threshold")`` -> ``alerts.rules[0].threshold``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith(("function-", "constrained-")):
            name = str(part) if len(str(part)) <= 60 else str(part)[:59] + "…"   # a key can be any length
            path += f".{name}" if path else name
    return path


def _describe(err: Any) -> str:
    loc = tuple(err["loc"])
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, _FieldError):
        loc = (*loc, cause.field)
    path = _path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_for(loc[:-1])
        allowed = list(parent.model_fields) if parent else []
        return (f"{path}: unknown key{_did_you_mean(str(loc[-1]), allowed)}; "
                f"allowed here: {', '.join(allowed)}")
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "literal_error":
        return f"{path}: {shown(err['input'])} is not allowed; expected {err['ctx']['expected']}"
    if kind == "value_error":
        msg = str(err.get("ctx", {}).get("error", err["msg"]))
        return f"{path}: {msg}" if path else msg
    if kind.endswith("_type") or kind in ("model_type", "dict_type", "list_type"):
        want = {"string_type": "a string", "int_type": "an integer", "float_type": "a number",
                "bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping",
                "model_type": "a mapping", "none_type": "null"}.get(kind, kind)
        return f"{path}: expected {want}, got {type(err['input']).__name__} {shown(err['input'])}"
    return f"{path}: {err['msg']}"


def parse_config(data: Any, source: str = "config", overrides: dict[str, str] | None = None) -> Config:
    """Validate a mapping (already loaded from YAML) into a Config, or raise one ConfigError line.

    ``overrides``: the keys a global option set (``{"region": "--region"}``): a bad value there is blamed
    on the option, not on the file."""
    overrides = overrides or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level (stack: NAME, ...), got "
                          f"{type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = _explained(exc.errors(include_url=False))
        first = errors[0]
        line = f"{source}: {_describe(first)}"
        key = str(first["loc"][0]) if first["loc"] else ""
        if key in overrides and len(first["loc"]) == 1:
            line = f"{overrides[key]}: {_describe(first).removeprefix(key + ': ')}"
        elif "region" in overrides and _describe(first).startswith("network.availability_zone"):
            line += f" (the region comes from {overrides['region']})"
        more = len(errors) - 1
        raise ConfigError(_clip(line),
                          hint=f"{more} more problem{'' if more == 1 else 's'} after this one" if more else None)


def _explained(errors: list[Any]) -> list[Any]:
    """The most specific error first: a typo'd key before the missing key it was meant to be (``stak: lab``
    says "did you mean 'stack'?", not "stack: required key is missing"), which is then not counted again."""
    # pydantic reports every member of a union; keep the most specific line.
    errors.sort(key=lambda e: (e["type"] not in ("value_error", "extra_forbidden", "missing", "literal_error"),
                               e["type"] == "missing", -len(e["loc"])))
    meant = set()
    for e in errors:
        if e["type"] == "extra_forbidden":
            parent = _model_for(tuple(e["loc"])[:-1])
            close = difflib.get_close_matches(str(e["loc"][-1]), list(parent.model_fields) if parent else [], n=1)
            if close:
                meant.add((*tuple(e["loc"])[:-1], close[0]))
    return [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"]) in meant)] or errors


#: Limits on the config file, so that hostile input is refused in bounded time and memory: a real config is a
#: few KB with a few dozen values. Aliases count expanded (``*a`` counts every node of what ``&a`` names),
#: which is what stops an alias bomb ("billion laughs": a few hundred bytes that expand to 10^9 nodes).
MAX_CONFIG_BYTES = 1 << 20
MAX_NODES = 10_000
MAX_DEPTH = 32


def _safe_loader() -> Any:
    """yaml.SafeLoader that refuses a key given twice in one mapping (YAML would keep the last silently) and
    any document over MAX_NODES nodes (aliases expanded) or MAX_DEPTH levels, as it composes, before any
    value is built."""
    import yaml
    from yaml.events import AliasEvent, CollectionStartEvent

    class SafeConfigLoader(yaml.SafeLoader):
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self._nodes = 0
            self._depth = 0
            self._sizes: dict[int, int] = {}

        def fetch_flow_collection_start(self, token_class: Any) -> None:
            # the scanner keeps a possible simple key per open bracket: refused here, "[[[[..." costs
            # quadratic time before the composer would see its depth
            if self.flow_level >= MAX_DEPTH:
                raise _LimitError(f"nested more than {MAX_DEPTH} levels deep; a config is at most {MAX_DEPTH} "
                                  "levels of mappings and lists", self.get_mark())
            super().fetch_flow_collection_start(token_class)

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, CollectionStartEvent) and self._depth >= MAX_DEPTH:
                raise _LimitError(f"nested more than {MAX_DEPTH} levels deep; a config is at most {MAX_DEPTH} "
                                  "levels of mappings and lists", event.start_mark)
            self._depth += 1
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            if isinstance(event, AliasEvent):
                self._count(self._sizes.get(id(node), 1), event.start_mark)
            else:
                self._count(1, event.start_mark)
                children = node.value if isinstance(node.value, list) else []
                size = 1 + sum(self._sizes.get(id(c), 1) for pair in children
                               for c in (pair if isinstance(pair, tuple) else (pair,)))
                self._sizes[id(node)] = size
            return node

        def _count(self, nodes: int, mark: Any) -> None:
            self._nodes += nodes
            if self._nodes > MAX_NODES:
                raise _LimitError(f"more than {MAX_NODES} YAML values (aliases counted expanded); a config is "
                                  f"at most {MAX_NODES} values", mark)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {shown(key)} is given twice in the same mapping", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return SafeConfigLoader


class _LimitError(Exception):
    """The config is over one of the limits above (raised while composing, at ``mark``)."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message, self.mark = message, mark


def _read_text(path: Path, source: str) -> str:
    """The config file as text: at most MAX_CONFIG_BYTES of UTF-8 (a BOM allowed), no NUL byte."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: the file is larger than {MAX_CONFIG_BYTES // 1024} KiB; a config is a small "
                          "YAML file (allowed: at most 1 MiB)")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"{source}: the file is UTF-16 text; a config is YAML in UTF-8 (save it as UTF-8)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{source}: line {line}: byte 0x{raw[exc.start]:02x} (offset {exc.start}) is not UTF-8; "
                          "a config is a YAML text file in UTF-8") from None
    nul = text.find("\0")
    if nul >= 0:
        raise ConfigError(f"{source}: line {text.count(chr(10), 0, nul) + 1}: a NUL byte (offset {nul}); a config is "
                          "a YAML text file in UTF-8, without control characters")
    return text


def _parse_yaml(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_safe_loader())  # noqa: S506 (a SafeLoader subclass)
    except _LimitError as exc:
        where = f" line {exc.mark.line + 1}, column {exc.mark.column + 1}:" if exc.mark else ""
        raise ConfigError(f"{source}:{where} {exc.message}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deep; a config is at most {MAX_DEPTH} levels of mappings and "
                          "lists") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(exc, yaml.reader.ReaderError):
            where = f" line {text.count(chr(10), 0, exc.position) + 1}"
            problem = (f"character #x{exc.character:04x} is not allowed in YAML (control characters are not)"
                       if isinstance(exc.character, int) else str(exc.reason))
        else:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(_clip(f"{source}:{where}: YAML syntax error: {problem}")) from None


SHOWN_PATH = 120       # the end of a longer --config path is shown

#: An error line is at most this long (its values are cut by ``shown`` already; this is the last guard).
MAX_LINE = 400


def _clip(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[:MAX_LINE - 1] + "…"


def load_config(path: str | os.PathLike[str] | None, *, stack: str | None = None,
                region: str | None = None, required: bool = True) -> Config:
    """Read the YAML file (if any), apply --stack/--region overrides, and validate."""
    data: dict[str, Any] = {}
    source = str(path) if path else "config"
    if len(source) > SHOWN_PATH:
        source = "…" + source[-(SHOWN_PATH - 1):]
    if path is not None and Path(path).is_file():
        loaded = _parse_yaml(_read_text(Path(path), source), source)
        if loaded is not None:
            if not isinstance(loaded, dict):
                raise ConfigError(f"{source}: expected a mapping at the top level (stack: NAME, ...), "
                                  f"got {type(loaded).__name__}")
            data = loaded
    elif required and stack is None:
        raise ConfigError(f"{source}: config file not found",
                          hint="create it (see config.example.yaml), pass --config PATH, or give --stack NAME")
    overrides: dict[str, str] = {}
    if stack is not None:
        data = {**data, "stack": stack}
        overrides["stack"] = _option("stack", stack)
    if region is not None:
        data = {**data, "region": region}
        overrides["region"] = _option("region", region)
    return parse_config(data, source, overrides)


def _option(key: str, value: str) -> str:
    """How the user gave a key's value: ``--region``, or ``FLOWWATCH_REGION`` when that variable holds it."""
    env = f"FLOWWATCH_{key.upper()}"
    return env if os.environ.get(env) == value else f"--{key}"
