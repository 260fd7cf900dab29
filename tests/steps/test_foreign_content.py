"""down refuses, before removing anything, content inside the stack's own resources that flowwatch did not create:
another inline policy on the delivery role, another Glue table in the stack's database, a named query in the
workgroup that is not a preset (as it refuses a managed policy someone attached to the role)."""

from __future__ import annotations

import pytest

from flowwatch.errors import OwnershipError
from flowwatch.model import DestroyOptions
from flowwatch.steps.athena import AthenaStep
from flowwatch.steps.delivery_role import ROLE_POLICY_NAME, DeliveryRoleStep

from tests.support.context import mutating
from tests.support.steps import converge_step

ROLE, ATHENA = DeliveryRoleStep(), AthenaStep()
PRESETS = {"rejects": ("rejected flows", "SELECT 1")}
THEIR_POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'


@pytest.fixture
def athena_ctx(ctx):
    ctx.named_queries = lambda fmt, database, table: PRESETS
    converge_step(ATHENA, ctx)
    return ctx


def test_down_refuses_an_inline_policy_someone_put_on_the_role(ctx, calls):
    converge_step(ROLE, ctx)
    iam = ctx.aws.session.client("iam")
    name = ctx.names.of("role")
    iam.put_role_policy(RoleName=name, PolicyName="their-extra-access", PolicyDocument=THEIR_POLICY)
    calls.clear()
    seen = ROLE.discover(ctx)
    assert seen.role.inline == ("their-extra-access",)
    with pytest.raises(OwnershipError, match=f"role {name} has inline policies flowwatch did not put "
                                             r"\(their-extra-access\)"):
        ROLE.plan_destroy(seen, DestroyOptions())
    assert mutating(calls) == []
    assert sorted(iam.list_role_policies(RoleName=name)["PolicyNames"]) == sorted([ROLE_POLICY_NAME,
                                                                                  "their-extra-access"])


def test_only_flowwatchs_own_inline_policy_is_not_refused(ctx):
    converge_step(ROLE, ctx)
    seen = ROLE.discover(ctx)
    assert seen.role.inline == () and [c.action for c in ROLE.plan_destroy(seen, DestroyOptions())] == ["delete"]


def test_down_refuses_a_glue_table_someone_added_to_the_stacks_database(athena_ctx, calls):
    glue = athena_ctx.aws.session.client("glue")
    glue.create_table(DatabaseName="flowwatch_test", TableInput={"Name": "their_table"})
    calls.clear()
    seen = ATHENA.discover(athena_ctx)
    assert seen.other_tables == ("their_table",)
    with pytest.raises(OwnershipError, match=r"database flowwatch_test holds tables flowwatch did not create "
                                             r"\(their_table\)"):
        ATHENA.plan_destroy(seen, DestroyOptions())
    assert mutating(calls) == []


def test_down_refuses_a_named_query_that_is_not_a_preset(athena_ctx, calls):
    athena = athena_ctx.aws.session.client("athena")
    athena.create_named_query(Name="their-report", Database="flowwatch_test", QueryString="SELECT 2",
                              WorkGroup="flowwatch-test-athena")
    calls.clear()
    seen = ATHENA.discover(athena_ctx)
    assert seen.foreign_queries == ("their-report",)
    with pytest.raises(OwnershipError, match=r"workgroup flowwatch-test-athena holds named queries flowwatch did "
                                             r"not create \(their-report\)"):
        ATHENA.plan_destroy(seen, DestroyOptions())
    assert mutating(calls) == []


def test_the_presets_alone_are_not_refused(athena_ctx):
    seen = ATHENA.discover(athena_ctx)
    assert seen.other_tables == () and seen.foreign_queries == ()
    assert [c.kind for c in ATHENA.plan_destroy(seen, DestroyOptions())] == ["workgroup", "table", "database"]


def test_engine_down_refuses_before_any_change(athena_ctx, calls):
    from flowwatch import engine
    from flowwatch.errors import FlowwatchError

    from tests.support.context import fresh

    athena_ctx.aws.session.client("glue").create_table(DatabaseName="flowwatch_test", TableInput={"Name": "x"})
    calls.clear()
    down_ctx = fresh(athena_ctx)
    down_ctx.named_queries = athena_ctx.named_queries
    with pytest.raises(FlowwatchError, match="holds tables flowwatch did not create"):
        engine.down(down_ctx, confirm=lambda _: True)
    assert mutating(calls) == []
