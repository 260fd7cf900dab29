"""athena: pure plans first, then a moto round trip (named queries from a provider, as the engine gives them)."""

from __future__ import annotations

import pytest

from flowwatch.model import DestroyOptions
from flowwatch.steps.athena import AthenaSeen, AthenaSpec, AthenaStep

from tests.support.steps import converge_step, destroy_step

STEP = AthenaStep()
TABLE = {"Name": "t", "Parameters": {"p": "1"}, "PartitionKeys": [{"Name": "dt"}],
         "StorageDescriptor": {"Columns": [{"Name": "a", "Type": "int"}], "Location": "s3://b/",
                               "SerdeInfo": {"SerializationLibrary": "S"}}}
CONFIG = {"ResultConfiguration": {"OutputLocation": "s3://b/r/",
                                  "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}},
          "EnforceWorkGroupConfiguration": True, "PublishCloudWatchMetricsEnabled": True,
          "BytesScannedCutoffPerQuery": 10 * 1024 ** 3}


def test_plan():
    want = AthenaSpec("db", "t", TABLE, "wg", CONFIG, {"q": ("d", "SELECT 1")})
    assert [c.kind for c in STEP.plan(want, None)] == ["database", "table", "workgroup", "query"]
    have = AthenaSeen("db", True, TABLE, "wg", True, CONFIG, {"q": ("id", "d", "SELECT 1")})
    assert STEP.plan(want, have) == []
    moved = {**TABLE, "StorageDescriptor": {**TABLE["StorageDescriptor"], "Location": "s3://c/"}}
    (change,) = STEP.plan(want, AthenaSeen("db", True, moved, "wg", True, CONFIG, have.queries))
    assert (change.action, change.kind) == ("update", "table")
    (change,) = STEP.plan(want, AthenaSeen("db", True, TABLE, "wg", True, CONFIG, {"q": ("id", "d", "SELECT 2")}))
    assert (change.action, change.kind, change.params["id"]) == ("update", "query", "id")


@pytest.mark.parametrize("drift", [
    {"BytesScannedCutoffPerQuery": None}, {"PublishCloudWatchMetricsEnabled": False},
    {"EnforceWorkGroupConfiguration": False}, {"ResultConfiguration": {"OutputLocation": "s3://b/r/"}}])
def test_workgroup_drift_in_any_enforced_setting_is_repaired(drift):
    want = AthenaSpec("db", "t", {}, "wg", CONFIG, {})
    have = AthenaSeen("db", True, None, "wg", True, {**CONFIG, **drift}, {})
    changes = [c for c in STEP.plan(want, have) if c.kind == "workgroup"]
    assert [(c.action, c.reason) for c in changes] == [("update", "settings differ")]


def test_plan_destroy_touches_only_ours():
    have = AthenaSeen("db", True, TABLE, "wg", True, CONFIG, {})
    assert [c.kind for c in STEP.plan_destroy(have, DestroyOptions())] == ["workgroup", "table", "database"]
    assert STEP.plan_destroy(AthenaSeen("db", False, TABLE, "wg", False), DestroyOptions()) == []


def test_without_a_provider_there_are_no_named_queries(ctx):
    assert STEP.desired(ctx).queries == {}


def test_apply_then_discover_agree(ctx):
    ctx.named_queries = lambda fmt, database, table: {"rejects": ("rejected flows", f"SELECT 1 FROM {database}.{table}")}
    created = converge_step(STEP, ctx)
    seen = STEP.discover(ctx)
    assert (seen.database, seen.workgroup, list(seen.queries)) == ("flowwatch_test", "flowwatch-test-athena",
                                                                   ["rejects"])
    assert seen.queries == created.queries
    assert STEP.plan(STEP.desired(ctx), seen) == []
    gone = destroy_step(STEP, ctx, seen)
    assert gone.database is None and gone.workgroup is None and STEP.found(STEP.discover(ctx)) is None
