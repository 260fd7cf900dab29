"""athena: the Glue database and table over the S3 flow logs, an Athena workgroup, and named queries.

- database ``flowwatch_<stack>`` (tagged), table ``flow_logs``: columns from the record format, partitioned
  as AWS's own Athena integration lays it out, by ``aws_account_id``, ``aws_region`` and ``dt`` over
  ``s3://<bucket>/AWSLogs/``, all resolved by partition projection (no MSCK REPAIR, no ALTER TABLE ADD
  PARTITION): so one table reads every account and region whose flow logs land in the bucket. The
  account and region enums hold the stack's own and those found in the bucket (two delimited
  ListObjectsV2 listings at discover, bounded); a new account or region, or a table of an older
  flowwatch (one ``dt`` partition), is repaired with UpdateTable. Sources:
  https://docs.aws.amazon.com/athena/latest/ug/vpc-flow-logs-partition-projection.html and
  https://docs.aws.amazon.com/athena/latest/ug/partition-projection-supported-types.html;
- workgroup ``flowwatch-<stack>-athena`` (tagged): results to ``s3://<bucket>/athena-results/``, SSE-S3,
  settings enforced, CloudWatch metrics on, 10 GiB scan cutoff per query;
- one named query per ``flowwatch query`` preset, as ``ctx.named_queries`` gives them (the engine supplies
  flowwatch.query's presets: a step never imports query/). Deleting the workgroup with RecursiveDeleteOption removes
  them on AWS (DeleteNamedQuery is therefore never needed).

``down`` refuses, before removing anything, content flowwatch did not create inside them: another Glue table in
the database, or a named query in the workgroup that is not one of the presets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flowwatch.errors import OwnershipError, error_code
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Stack, StatusDetail
from flowwatch.naming import STACK_TAG, tag_dict, tags
from flowwatch.steps.base import tag_map, when_visible

SCAN_CUTOFF_BYTES = 10 * 1024 ** 3
RESULTS_PREFIX = "athena-results/"

#: At most this many accounts (one ListObjectsV2 each for its regions) and regions in the enum projections.
MAX_ENUM_VALUES = 200

# No serialization.null.format: as in AWS's table (ROW FORMAT DELIMITED FIELDS TERMINATED BY ' '), a '-'
# stays the string '-' (action '-' on NODATA rows) and is NULL only in a number column.
TEXT_STORAGE = {
    "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                  "Parameters": {"field.delim": " ", "serialization.format": " "}},
}
PARQUET_STORAGE = {
    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                  "Parameters": {"serialization.format": "1"}},
}


@dataclass(frozen=True)
class AthenaSpec:
    database: str
    table: str
    table_input: dict[str, Any]
    workgroup: str
    workgroup_config: dict[str, Any]
    queries: Mapping[str, tuple[str, str]]   # name -> (description, sql)
    stack: str = ""


@dataclass(frozen=True)
class AthenaSeen:
    database: str | None = None
    database_ours: bool = True
    table: dict[str, Any] | None = None
    workgroup: str | None = None
    workgroup_ours: bool = True
    workgroup_config: dict[str, Any] = field(default_factory=dict)
    queries: dict[str, tuple[str, str, str]] = field(default_factory=dict)   # name -> (id, description, sql)
    other_tables: tuple[str, ...] = ()       # tables in the database besides flowwatch's
    foreign_queries: tuple[str, ...] = ()    # named queries in the workgroup that are not flowwatch's presets
    accounts: tuple[str, ...] = ()           # account folders found in the bucket (for the enum projection)
    regions: tuple[str, ...] = ()            # region folders found under them


def table_input(ctx: Context, name: str) -> dict[str, Any]:
    """The Glue TableInput for the config (the enums hold the stack's own account and region; the plan
    adds those found in the bucket)."""
    from flowwatch.records import PARTITION_KEYS

    fmt = ctx.config.record_format
    layout = ctx.s3_layout()
    parquet = ctx.config.flow_logs.s3_file_format == "parquet"
    storage = dict(PARQUET_STORAGE if parquet else TEXT_STORAGE)
    params = {"EXTERNAL": "TRUE", "classification": "parquet" if parquet else "csv",
              **layout.projection_parameters()}
    if parquet:
        params.pop("skip.header.line.count", None)
    return {"Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": params,
            "PartitionKeys": [{"Name": key, "Type": "string"} for key in PARTITION_KEYS],
            "StorageDescriptor": {"Columns": fmt.glue_columns(), "Location": layout.table_location(), **storage}}


class AthenaStep:
    name = "athena"

    def desired(self, ctx: Context) -> AthenaSpec:
        database, table, workgroup = ctx.names.of("database"), ctx.names.of("table"), ctx.names.of("workgroup")
        config = {
            "ResultConfiguration": {"OutputLocation": f"s3://{ctx.bucket}/{RESULTS_PREFIX}",
                                    "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                                    # Athena writes results only if the bucket is still this account's
                                    "ExpectedBucketOwner": ctx.account},
            "EnforceWorkGroupConfiguration": True, "PublishCloudWatchMetricsEnabled": True,
            "BytesScannedCutoffPerQuery": SCAN_CUTOFF_BYTES,
        }
        queries = ctx.named_queries(ctx.config.record_format, database, table) if ctx.named_queries else {}
        return AthenaSpec(database, table, table_input(ctx, table), workgroup, config, queries, ctx.stack.name)

    def discover(self, ctx: Context) -> AthenaSeen | None:
        glue, athena = ctx.aws.glue, ctx.aws.athena
        names = ctx.names
        seen = AthenaSeen()
        database = names.of("database")
        try:
            glue.get_database(Name=database)
            arn = f"arn:{ctx.aws.partition}:glue:{ctx.region}:{ctx.account}:database/{database}"
            ours = glue.get_tags(ResourceArn=arn).get("Tags", {}).get(STACK_TAG) == ctx.stack.name
            others = tuple(_other_tables(glue, database, names.of("table"))) if ours else ()
            seen = AthenaSeen(database=database, database_ours=ours, other_tables=others)
            try:
                table = glue.get_table(DatabaseName=database, Name=names.of("table"))["Table"]
                seen = replace(seen, table=table)
            except Exception as exc:
                if error_code(exc) != "EntityNotFoundException":
                    raise
        except Exception as exc:
            if error_code(exc) != "EntityNotFoundException":
                raise
        workgroup = names.of("workgroup")
        try:
            wg = athena.get_work_group(WorkGroup=workgroup).get("WorkGroup")
        except Exception as exc:
            if error_code(exc) != "InvalidRequestException":
                raise
            wg = None
        if wg:
            arn = f"arn:{ctx.aws.partition}:athena:{ctx.region}:{ctx.account}:workgroup/{workgroup}"
            wg_tags = tag_map(athena.list_tags_for_resource(ResourceARN=arn).get("Tags", []))
            queries = self._queries(athena, workgroup)
            presets = (ctx.named_queries(ctx.config.record_format, database, names.of("table"))
                       if ctx.named_queries else None)
            foreign = tuple(sorted(q for q in queries if q not in presets)) if presets is not None else ()
            seen = replace(seen, workgroup=workgroup, workgroup_ours=wg_tags.get(STACK_TAG) == ctx.stack.name,
                           workgroup_config=wg.get("Configuration", {}), queries=queries, foreign_queries=foreign)
        accounts, regions = partition_values(ctx.aws.s3, ctx.s3_layout(), owner=ctx.account)
        return replace(seen, accounts=tuple(accounts), regions=tuple(regions))

    @staticmethod
    def _queries(athena: Any, workgroup: str) -> dict[str, tuple[str, str, str]]:
        ids: list[str] = []
        for page in athena.get_paginator("list_named_queries").paginate(WorkGroup=workgroup):
            ids += page["NamedQueryIds"]
        out: dict[str, tuple[str, str, str]] = {}
        for query_id in ids:  # GetNamedQuery: a handful of presets, and supported everywhere
            q = athena.get_named_query(NamedQueryId=query_id)["NamedQuery"]
            out[q["Name"]] = (q["NamedQueryId"], q.get("Description", ""), q["QueryString"])
        return out

    def plan(self, want: AthenaSpec, have: AthenaSeen | None) -> list[Change]:
        have = have or AthenaSeen()
        want = replace(want, table_input=with_sources(want.table_input, have.accounts, have.regions))
        changes: list[Change] = []
        if have.database is None:
            changes.append(Change(self.name, "create", f"Glue database {want.database}", "not found",
                                  {"kind": "database"}, spec=want))
        elif not have.database_ours:
            raise OwnershipError(f"athena: Glue database {want.database} exists and is not the stack's",
                                 hint="set names.database to another name, or use another --stack")
        if have.table is None:
            changes.append(Change(self.name, "create", f"Glue table {want.database}.{want.table} (partition projection)",
                                  "not found", {"kind": "table"}, spec=want))
        else:
            diff = _table_diff(have.table, want.table_input)
            if diff:
                changes.append(Change(self.name, "update", f"Glue table {want.database}.{want.table}", diff,
                                      {"kind": "table"}, spec=want))
        if have.workgroup is None:
            changes.append(Change(self.name, "create", f"Athena workgroup {want.workgroup}", "not found",
                                  {"kind": "workgroup"}, spec=want))
        elif not have.workgroup_ours:
            raise OwnershipError(f"athena: workgroup {want.workgroup} exists and is not the stack's",
                                 hint="set names.workgroup to another name, or use another --stack")
        elif not _same_workgroup(have.workgroup_config, want.workgroup_config):
            changes.append(Change(self.name, "update", f"Athena workgroup {want.workgroup}",
                                  "settings differ", {"kind": "workgroup"}, spec=want))
        for name, (description, sql) in want.queries.items():
            seen = have.queries.get(name)
            if seen is None:
                changes.append(Change(self.name, "create", f"named query {name}", "not found",
                                      {"kind": "query", "name": name}, spec=want))
            elif (seen[1], seen[2]) != (description, sql):
                changes.append(Change(self.name, "update", f"named query {name}", "SQL differs",
                                      {"kind": "query", "name": name, "id": seen[0]}, spec=want))
        return changes

    def apply(self, ctx: Context, change: Change) -> AthenaSeen | None:
        have: AthenaSeen = change.before or AthenaSeen()
        glue, athena = ctx.aws.glue, ctx.aws.athena
        kind = change.kind
        if change.action == "delete":
            if kind == "workgroup":
                athena.delete_work_group(WorkGroup=change.params["name"], RecursiveDeleteOption=True)
                return replace(have, workgroup=None, workgroup_config={}, queries={})
            if kind == "table":
                glue.delete_table(DatabaseName=change.params["database"], Name=change.params["name"])
                return replace(have, table=None)
            glue.delete_database(Name=change.params["name"])
            return replace(have, database=None, database_ours=True, table=None)
        want: AthenaSpec = change.spec
        if kind == "database":
            glue.create_database(DatabaseInput={
                "Name": want.database, "Description": f"flowwatch stack {want.stack}: VPC flow logs"},
                Tags=tag_dict(want.stack, self.name, want.database))
            return replace(have, database=want.database, database_ours=True)
        if kind == "table":
            if change.action == "create":
                when_visible(ctx.poll, lambda: glue.create_table(DatabaseName=want.database,
                                                                 TableInput=want.table_input),
                             "glue_database", f"Glue database {want.database} to be visible")
            else:
                glue.update_table(DatabaseName=want.database, TableInput=want.table_input)
            return replace(have, table=want.table_input)
        if kind == "workgroup":
            if change.action == "create":
                athena.create_work_group(Name=want.workgroup, Configuration=want.workgroup_config,
                                         Description=f"flowwatch stack {want.stack}",
                                         Tags=tags(want.stack, self.name, want.workgroup))
            else:
                result = want.workgroup_config["ResultConfiguration"]
                athena.update_work_group(WorkGroup=want.workgroup, ConfigurationUpdates={
                    "ResultConfigurationUpdates": {"OutputLocation": result["OutputLocation"],
                                                   "EncryptionConfiguration": result["EncryptionConfiguration"],
                                                   "ExpectedBucketOwner": result["ExpectedBucketOwner"]},
                    "EnforceWorkGroupConfiguration": True, "PublishCloudWatchMetricsEnabled": True,
                    "BytesScannedCutoffPerQuery": SCAN_CUTOFF_BYTES})
            return replace(have, workgroup=want.workgroup, workgroup_ours=True, workgroup_config=want.workgroup_config)
        if kind == "query":
            name = change.params["name"]
            description, sql = want.queries[name]
            queries = dict(have.queries)
            if change.action == "update":
                athena.update_named_query(NamedQueryId=change.params["id"], Name=name, Description=description,
                                          QueryString=sql)
                queries[name] = (change.params["id"], description, sql)
            else:
                qid = athena.create_named_query(Name=name, Description=description, Database=want.database,
                                                QueryString=sql, WorkGroup=want.workgroup)["NamedQueryId"]
                queries[name] = (qid, description, sql)
            return replace(have, queries=queries)
        raise ValueError(f"athena: unknown change {kind!r}")

    def plan_destroy(self, have: AthenaSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None:
            return []
        # checked before down removes anything (as for a managed policy on the role)
        if have.workgroup and have.workgroup_ours and have.foreign_queries:
            raise OwnershipError(f"athena: the stack's workgroup {have.workgroup} holds named queries flowwatch did "
                                 f"not create ({', '.join(have.foreign_queries)}); down would delete them with it",
                                 hint="move or delete them (aws athena delete-named-query --named-query-id ID), "
                                      "then run down again")
        if have.database and have.database_ours and have.other_tables:
            raise OwnershipError(f"athena: the stack's Glue database {have.database} holds tables flowwatch did not "
                                 f"create ({', '.join(have.other_tables)}); down does not delete them",
                                 hint=f"aws glue delete-table --database-name {have.database} --name TABLE (or move "
                                      "them), then run down again")
        changes = []
        if have.workgroup and have.workgroup_ours:
            changes.append(Change(self.name, "delete", f"Athena workgroup {have.workgroup} and its "
                                  f"{len(have.queries)} named queries", "down",
                                  {"kind": "workgroup", "name": have.workgroup}))
        if have.database and have.database_ours:
            if have.table:
                changes.append(Change(self.name, "delete", f"Glue table {have.database}.{have.table['Name']}",
                                      "down", {"kind": "table", "database": have.database,
                                               "name": have.table["Name"]}))
            changes.append(Change(self.name, "delete", f"Glue database {have.database}", "down",
                                  {"kind": "database", "name": have.database}))
        return changes

    def publish(self, stack: Stack, have: AthenaSeen | None) -> None:
        stack.workgroup = have.workgroup if have and have.workgroup else PENDING

    def found(self, have: AthenaSeen | None) -> str | None:
        if have is None or have.database is None:
            return None
        table = f".{have.table['Name']}" if have.table else ""
        return f"{have.database}{table}, workgroup {have.workgroup}, {len(have.queries)} named queries"

    def status(self, have: AthenaSeen | None) -> StatusDetail:
        if have is None:
            return StatusDetail()
        ids = {"database": have.database, "table": have.table["Name"] if have.table else None,
               "workgroup": have.workgroup}
        ids.update({f"query:{name}": query[0] for name, query in sorted(have.queries.items())})
        return StatusDetail(ids={k: v for k, v in ids.items() if v})


def partition_values(s3: Any, layout: Any, *, owner: str | None = None,
                     limit: int = MAX_ENUM_VALUES) -> tuple[list[str], list[str]]:
    """The accounts and regions whose flow-log folders are in the layout's bucket (see :func:`source_folders`),
    each sorted, at most ``limit`` of each."""
    folders = source_folders(s3, layout, owner=owner, limit=limit)
    return sorted({a for a, _ in folders}), sorted({r for _, r in folders})[:limit]


def source_folders(s3: Any, layout: Any, *, owner: str | None = None,
                   limit: int = MAX_ENUM_VALUES) -> list[tuple[str, str]]:
    """The (account, region) folders of flow logs in the layout's bucket: one delimited ListObjectsV2
    listing of ``<prefix>AWSLogs/`` (the accounts, at most ``limit``), then one of each account's
    ``.../vpcflowlogs/`` (its regions); sorted. Nothing when the bucket does not exist yet (a first
    ``up``, a dry run). Folders that are no account or region are passed over."""
    accounts = _folders(s3, layout.bucket, layout.logs_prefix(), layout.account_folder, limit, owner)
    pairs: list[tuple[str, str]] = []
    for account in accounts or ():
        regions = _folders(s3, layout.bucket, layout.regions_prefix(account), layout.region_folder, limit, owner)
        pairs += [(account, region) for region in regions or ()]
    return pairs


def _folders(s3: Any, bucket: str, prefix: str, parse: Any, limit: int, owner: str | None) -> list[str] | None:
    """The values ``parse`` reads from the folders directly under ``prefix`` (CommonPrefixes), sorted;
    None when the bucket does not exist."""
    found: set[str] = set()
    args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    if owner:
        args["ExpectedBucketOwner"] = owner
    while len(found) < limit:
        try:
            page = s3.list_objects_v2(**args)
        except Exception as exc:
            if error_code(exc) == "NoSuchBucket":
                return None
            raise
        for common in page.get("CommonPrefixes", []):
            value = parse(common["Prefix"][len(prefix):])
            if value is not None:
                found.add(value)
        if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
            break
        args["ContinuationToken"] = page["NextContinuationToken"]
    return sorted(found)[:limit]


def with_sources(table: dict[str, Any], accounts: tuple[str, ...], regions: tuple[str, ...]) -> dict[str, Any]:
    """The TableInput with ``accounts``/``regions`` added to its enum projections (sorted, no repeats)."""
    from flowwatch.records import ACCOUNT_KEY, REGION_KEY

    params = dict(table.get("Parameters", {}))
    for key, extra in ((ACCOUNT_KEY, accounts), (REGION_KEY, regions)):
        name = f"projection.{key}.values"
        if name in params and extra:
            params[name] = ",".join(sorted({*params[name].split(","), *extra}))
    return {**table, "Parameters": params} if "Parameters" in table else table


def _other_tables(glue: Any, database: str, ours: str) -> list[str]:
    names: list[str] = []
    for page in glue.get_paginator("get_tables").paginate(DatabaseName=database):
        names += [t["Name"] for t in page["TableList"] if t["Name"] != ours]
    return sorted(names)


def _table_diff(seen: dict[str, Any], want: dict[str, Any]) -> str | None:
    sd, wsd = seen.get("StorageDescriptor", {}), want["StorageDescriptor"]
    keys = [(k["Name"], k.get("Type", "string")) for k in seen.get("PartitionKeys", [])]
    want_keys = [(k["Name"], k.get("Type", "string")) for k in want["PartitionKeys"]]
    if keys != want_keys:   # e.g. a table of an older flowwatch: one dt partition
        return f"partition keys {', '.join(k for k, _ in keys) or '(none)'} -> {', '.join(k for k, _ in want_keys)}"
    if [(c["Name"], c["Type"]) for c in sd.get("Columns", [])] != [(c["Name"], c["Type"]) for c in wsd["Columns"]]:
        return "columns differ (record format changed)"
    if sd.get("Location") != wsd["Location"]:
        return f"location {sd.get('Location')} -> {wsd['Location']}"
    serde, want_serde = sd.get("SerdeInfo", {}), wsd["SerdeInfo"]
    if serde.get("SerializationLibrary") != want_serde["SerializationLibrary"]:
        return "file format differs"
    if serde.get("Parameters", {}) != want_serde.get("Parameters", {}):
        have_params, want_params = serde.get("Parameters", {}), want_serde.get("Parameters", {})
        key = sorted(k for k in {*have_params, *want_params} if have_params.get(k) != want_params.get(k))[0]
        return f"SerDe {key} {have_params.get(key, '(none)')} -> {want_params.get(key, '(none)')}"
    params = seen.get("Parameters", {})
    for key, value in want["Parameters"].items():
        if params.get(key) != value:
            return f"{key} {params.get(key)} -> {value}"
    return None


def _same_workgroup(seen: dict[str, Any], want: dict[str, Any]) -> bool:
    """Every setting flowwatch enforces: results location, owner and encryption, enforcement, metrics, scan cutoff."""
    rc, wrc = seen.get("ResultConfiguration", {}), want["ResultConfiguration"]
    return (rc.get("OutputLocation") == wrc["OutputLocation"]
            and rc.get("ExpectedBucketOwner") == wrc.get("ExpectedBucketOwner")
            and rc.get("EncryptionConfiguration") == wrc["EncryptionConfiguration"]
            and all(seen.get(key) == want[key] for key in
                    ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled", "BytesScannedCutoffPerQuery")))


