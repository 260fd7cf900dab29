"""cleanup: plans nothing (up never runs it), removes what simulate-reject launched; explicit finders."""

from __future__ import annotations

from flowwatch.model import DestroyOptions
from flowwatch.naming import tag_spec
from flowwatch.steps.cleanup import CleanupSeen, CleanupStep, find_instances, find_security_groups

from tests.support.steps import destroy_step, parents

STEP = CleanupStep()


def test_plan_is_always_empty():
    assert STEP.plan(None, None) == [] == STEP.plan(None, CleanupSeen(("i-1",), ("sg-1",)))


def test_plan_destroy_instances_then_groups():
    changes = STEP.plan_destroy(CleanupSeen(("i-1",), ("sg-1",)), DestroyOptions())
    assert [(c.kind, tuple(c.params["ids"])) for c in changes] == [("instances", ("i-1",)),
                                                                   ("security_groups", ("sg-1",))]
    assert STEP.plan_destroy(None, DestroyOptions()) == []


def test_finders_take_explicit_inputs_and_down_removes_both(ctx, monkeypatch):
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "true")
    parents(ctx, "vpc", "subnet")
    ec2 = ctx.aws.ec2
    vpc_id, subnet_id = ctx.stack.vpc_id, ctx.stack.subnet_id
    assert STEP.discover(ctx) is None
    group = ec2.create_security_group(GroupName="g", Description="d", VpcId=vpc_id,
                                      TagSpecifications=tag_spec("security-group", "test", "security_group", "g"))
    ec2.create_security_group(GroupName="theirs", Description="d", VpcId=vpc_id)
    (instance,) = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=subnet_id,
                                    TagSpecifications=tag_spec("instance", "test", "instance", "i"))["Instances"]
    assert [i["InstanceId"] for i in find_instances(ec2, "test")] == [instance["InstanceId"]]
    assert find_instances(ec2, "other") == []
    assert [g["GroupId"] for g in find_security_groups(ec2, "test", vpc_id)] == [group["GroupId"]]
    seen = STEP.discover(ctx)
    assert seen == CleanupSeen((instance["InstanceId"],), (group["GroupId"],), (instance["PrivateIpAddress"],))
    assert destroy_step(STEP, ctx, seen) is None and STEP.discover(ctx) is None
    assert find_instances(ec2, "test", ["terminated"])                # terminated, not just forgotten
