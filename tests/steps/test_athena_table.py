"""The Glue table as AWS's own Athena integration lays it out, checked through boto3 on moto: partition keys
aws_account_id, aws_region, dt over s3://<bucket>/AWSLogs/, every projection property (plain, Hive,
per-hour), the enums of the accounts and regions found in the bucket, and the repair of older tables.

Sources: https://docs.aws.amazon.com/athena/latest/ug/vpc-flow-logs-partition-projection.html and
https://docs.aws.amazon.com/athena/latest/ug/partition-projection-supported-types.html.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from itertools import product

import pytest

from flowwatch.steps.athena import AthenaStep, source_folders

from tests.support.context import make_config, make_ctx, mutating
from tests.support.steps import converge_step

STEP = AthenaStep()
OWN_ACCOUNT, OWN_REGION = "123456789012", "us-east-1"       # moto's account; the config's region
OTHER_ACCOUNT, OTHER_REGION = "210987654321", "eu-west-1"
T = datetime(2026, 11, 27, 5, 7, tzinfo=UTC)
LAYOUTS = {
    "plain": ({}, "AWSLogs/${aws_account_id}/vpcflowlogs/${aws_region}/${dt}", "yyyy/MM/dd", "DAYS"),
    "per-hour": ({"per_hour_partitions": True}, "AWSLogs/${aws_account_id}/vpcflowlogs/${aws_region}/${dt}",
                 "yyyy/MM/dd/HH", "HOURS"),
    "hive": ({"hive_partitions": True},
             "AWSLogs/aws-account-id=${aws_account_id}/aws-service=vpcflowlogs/aws-region=${aws_region}/${dt}",
             "'year='yyyy'/month='MM'/day='dd", "DAYS"),
    "hive-per-hour": ({"hive_partitions": True, "per_hour_partitions": True},
                      "AWSLogs/aws-account-id=${aws_account_id}/aws-service=vpcflowlogs/aws-region=${aws_region}/${dt}",
                      "'year='yyyy'/month='MM'/day='dd'/hour='HH", "HOURS"),
}


def glue_table(ctx):
    return ctx.aws.session.client("glue").get_table(DatabaseName=ctx.names.of("database"),
                                                    Name=ctx.names.of("table"))["Table"]


def put_flow_logs(ctx, sources):
    """One gzip object per (account, region), at the key AWS writes for the stack's layout."""
    s3 = ctx.aws.session.client("s3")
    if ctx.bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=ctx.bucket)
    for n, (account, region) in enumerate(sources):
        key = ctx.s3_layout().of_source(account, region).object_key(T, "fl-0123456789abcdef0", f"{n:08x}")
        s3.put_object(Bucket=ctx.bucket, Key=key, Body=gzip.compress(b"version account-id\n"))


@pytest.mark.parametrize("name", LAYOUTS)
def test_the_glue_ddl_is_aws_integrations_layout(session, name):
    options, template, dt_format, unit = LAYOUTS[name]
    ctx = make_ctx(session, make_config(flow_logs=options))
    converge_step(STEP, ctx)
    table = glue_table(ctx)
    assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [
        ("aws_account_id", "string"), ("aws_region", "string"), ("dt", "string")]
    assert table["StorageDescriptor"]["Location"] == f"s3://{ctx.bucket}/AWSLogs/"
    params = table["Parameters"]
    assert {k: v for k, v in params.items() if k.startswith(("projection.", "storage."))} == {
        "projection.enabled": "true",
        "projection.aws_account_id.type": "enum",
        "projection.aws_account_id.values": OWN_ACCOUNT,     # an empty bucket: the stack's own
        "projection.aws_region.type": "enum",
        "projection.aws_region.values": OWN_REGION,
        "projection.dt.type": "date",
        "projection.dt.format": dt_format,
        "projection.dt.range": f"{ctx.s3_layout().dt_value(datetime(2020, 1, 1, tzinfo=UTC))},NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": unit,
        "storage.location.template": f"s3://{ctx.bucket}/{template}",
    }
    assert params["skip.header.line.count"] == "1"
    # '-' is a string, as in AWS's table: no serialization.null.format
    assert table["StorageDescriptor"]["SerdeInfo"]["Parameters"] == {"field.delim": " ", "serialization.format": " "}
    # the template, filled in, is exactly the folder AWS writes each account's and region's files to
    for account, region in product((OWN_ACCOUNT, OTHER_ACCOUNT), (OWN_REGION, OTHER_REGION)):
        layout = ctx.s3_layout().of_source(account, region)
        folder = (params["storage.location.template"].replace("${aws_account_id}", account)
                  .replace("${aws_region}", region).replace("${dt}", layout.dt_value(T)))
        assert f"{folder}/" == f"s3://{ctx.bucket}/{layout.partition_prefix(T)}"


@pytest.mark.parametrize("name", ["plain", "hive"])
def test_the_enums_list_every_account_and_region_in_the_bucket(session, name):
    ctx = make_ctx(session, make_config(flow_logs=LAYOUTS[name][0]))
    sources = [(OWN_ACCOUNT, OWN_REGION), (OWN_ACCOUNT, OTHER_REGION), (OTHER_ACCOUNT, OWN_REGION),
               (OTHER_ACCOUNT, OTHER_REGION)]
    put_flow_logs(ctx, sources)
    s3 = session.client("s3")   # folders that are no account or region are passed over
    for junk in ("AWSLogs/notes.txt", "AWSLogs/12345/x", f"AWSLogs/{OTHER_ACCOUNT}x/y", "other/333333333333/x",
                 "AWSLogs/aws-account-id=4444/x", f"AWSLogs/{OWN_ACCOUNT}/vpcflowlogs/Not_A_Region/x"):
        s3.put_object(Bucket=ctx.bucket, Key=junk, Body=b"")
    assert source_folders(ctx.aws.s3, ctx.s3_layout()) == sorted(sources)
    converge_step(STEP, ctx, STEP.discover(ctx))
    params = glue_table(ctx)["Parameters"]
    accounts = params["projection.aws_account_id.values"].split(",")
    regions = params["projection.aws_region.values"].split(",")
    assert accounts == sorted({OWN_ACCOUNT, OTHER_ACCOUNT}) and regions == sorted({OWN_REGION, OTHER_REGION})
    assert set(product(accounts, regions)) == set(sources)          # all 4 combinations are projected


def test_a_newly_seen_account_is_added_by_update_table_and_the_next_up_is_silent(session, calls):
    ctx = make_ctx(session)
    put_flow_logs(ctx, [(OWN_ACCOUNT, OWN_REGION)])
    converge_step(STEP, ctx, STEP.discover(ctx))
    assert STEP.plan(STEP.desired(ctx), STEP.discover(ctx)) == []
    put_flow_logs(ctx, [(OWN_ACCOUNT, OWN_REGION), (OTHER_ACCOUNT, OTHER_REGION)])
    calls.clear()
    have = STEP.discover(ctx)
    (change,) = STEP.plan(STEP.desired(ctx), have)
    assert (change.action, change.kind) == ("update", "table")
    assert "projection.aws_account_id.values" in change.reason
    STEP.apply(ctx, change.after(have))
    assert mutating(calls) == [("glue", "UpdateTable")]
    params = glue_table(ctx)["Parameters"]
    assert params["projection.aws_account_id.values"] == f"{OWN_ACCOUNT},{OTHER_ACCOUNT}"
    assert params["projection.aws_region.values"] == f"{OTHER_REGION},{OWN_REGION}"
    calls.clear()
    assert STEP.plan(STEP.desired(ctx), STEP.discover(ctx)) == []
    assert mutating(calls) == []
    listings = [c for c in calls if c == ("s3", "ListObjectsV2")]
    assert len(listings) == 1 + 2      # the accounts, then each account's regions


def test_an_older_single_dt_table_is_migrated_by_update_table(session, calls):
    ctx = make_ctx(session)
    converge_step(STEP, ctx)
    glue = session.client("glue")
    new = glue_table(ctx)
    base = ctx.s3_layout().base_prefix()
    old_input = {   # what flowwatch wrote before: one dt partition under the stack's own account and region
        "Name": new["Name"], "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": "csv", "projection.enabled": "true",
                       "projection.dt.type": "date", "projection.dt.format": "yyyy/MM/dd",
                       "projection.dt.range": "2020/01/01,NOW", "projection.dt.interval": "1",
                       "projection.dt.interval.unit": "DAYS", "skip.header.line.count": "1",
                       "storage.location.template": f"s3://{ctx.bucket}/{base}${{dt}}"},
        "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        "StorageDescriptor": {**new["StorageDescriptor"], "Location": f"s3://{ctx.bucket}/{base}",
                              "SerdeInfo": {**new["StorageDescriptor"]["SerdeInfo"], "Parameters": {
                                  "field.delim": " ", "serialization.format": " ", "serialization.null.format": "-"}}},
    }
    glue.update_table(DatabaseName=ctx.names.of("database"), TableInput=old_input)
    calls.clear()
    have = STEP.discover(ctx)
    (change,) = STEP.plan(STEP.desired(ctx), have)
    assert (change.action, change.kind, change.reason) == (
        "update", "table", "partition keys dt -> aws_account_id, aws_region, dt")
    STEP.apply(ctx, change.after(have))
    assert mutating(calls) == [("glue", "UpdateTable")]
    migrated = glue_table(ctx)
    assert [k["Name"] for k in migrated["PartitionKeys"]] == ["aws_account_id", "aws_region", "dt"]
    assert migrated["StorageDescriptor"]["Location"] == f"s3://{ctx.bucket}/AWSLogs/"
    assert "serialization.null.format" not in migrated["StorageDescriptor"]["SerdeInfo"]["Parameters"]
    assert migrated["Parameters"]["storage.location.template"] == new["Parameters"]["storage.location.template"]
    assert STEP.plan(STEP.desired(ctx), STEP.discover(ctx)) == []


def test_only_the_null_format_left_over_is_repaired_too(session):
    ctx = make_ctx(session)
    converge_step(STEP, ctx)
    table = glue_table(ctx)
    sd = table["StorageDescriptor"]
    serde = {**sd["SerdeInfo"], "Parameters": {**sd["SerdeInfo"]["Parameters"], "serialization.null.format": "-"}}
    session.client("glue").update_table(DatabaseName=ctx.names.of("database"), TableInput={
        "Name": table["Name"], "TableType": table["TableType"], "Parameters": table["Parameters"],
        "PartitionKeys": table["PartitionKeys"], "StorageDescriptor": {**sd, "SerdeInfo": serde}})
    (change,) = STEP.plan(STEP.desired(ctx), STEP.discover(ctx))
    assert change.reason == "SerDe serialization.null.format - -> (none)"


def test_no_bucket_yet_means_the_stacks_own_account_and_region(session, calls):
    ctx = make_ctx(session)
    have = STEP.discover(ctx)           # a first up, a dry run: the bucket does not exist yet
    assert (have.accounts, have.regions) == ((), ())
    (table,) = [c for c in STEP.plan(STEP.desired(ctx), have) if c.kind == "table"]
    params = table.spec.table_input["Parameters"]
    assert (params["projection.aws_account_id.values"], params["projection.aws_region.values"]) == (
        OWN_ACCOUNT, OWN_REGION)
    assert mutating(calls) == []
