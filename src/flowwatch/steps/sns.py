"""sns: the alert topic, a policy letting only CloudWatch alarms of this account publish, and the
optional e-mail subscription (pending until the recipient confirms it: a note says so).

The topic is found by its exact name (its ARN) and must carry our stack tag. Not encrypted with the
AWS-managed key on purpose: CloudWatch alarms cannot publish to a topic encrypted with alias/aws/sns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from flowwatch.errors import OwnershipError, error_code
from flowwatch.model import PENDING, Change, Context, DestroyOptions, Stack, StatusDetail, SubscriptionState
from flowwatch.naming import STACK_TAG, tags
from flowwatch.steps.base import policy_json, same_policy, tag_map

PENDING_ARN = "PendingConfirmation"


def topic_policy(partition: str, region: str, account: str, topic_arn: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Id": "flowwatch-alerts", "Statement": [
        {"Sid": "CloudWatchAlarmsOfThisAccountOnly", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish", "Resource": topic_arn,
         "Condition": {"StringEquals": {"aws:SourceAccount": account},
                       "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:*"}}},
        {"Sid": "OwnerManages", "Effect": "Allow", "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
         "Action": ["sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:AddPermission",
                    "sns:RemovePermission", "sns:DeleteTopic", "sns:Subscribe", "sns:ListSubscriptionsByTopic"],
         "Resource": topic_arn},
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish",
         "Resource": topic_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}


@dataclass(frozen=True)
class SnsSpec:
    name: str
    arn: str
    policy: dict[str, Any]
    email: str | None
    stack: str = ""


@dataclass(frozen=True)
class Subscription:
    arn: str
    protocol: str
    endpoint: str

    @property
    def pending(self) -> bool:
        return self.arn == PENDING_ARN


@dataclass(frozen=True)
class SnsSeen:
    arn: str
    policy: Any
    ours: bool
    subscriptions: tuple[Subscription, ...] = field(default_factory=tuple)
    pending_count: int = 0
    notes: tuple[str, ...] = field(default=(), compare=False)    # what apply learned that the user must act on


class SnsStep:
    name = "sns"

    def desired(self, ctx: Context) -> SnsSpec:
        name = ctx.names.of("topic")
        arn = f"arn:{ctx.aws.partition}:sns:{ctx.region}:{ctx.account}:{name}"
        return SnsSpec(name, arn, topic_policy(ctx.aws.partition, ctx.region, ctx.account, arn),
                       ctx.config.alerts.email, ctx.stack.name)

    def discover(self, ctx: Context) -> SnsSeen | None:
        sns = ctx.aws.sns
        arn = f"arn:{ctx.aws.partition}:sns:{ctx.region}:{ctx.account}:{ctx.names.of('topic')}"
        try:
            attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        except Exception as exc:
            if error_code(exc) in ("NotFound", "NotFoundException"):
                return None
            raise
        ours = tag_map(sns.list_tags_for_resource(ResourceArn=arn)["Tags"]).get(STACK_TAG) == ctx.stack.name
        subs: list[Subscription] = []
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn):
            subs += [Subscription(s["SubscriptionArn"], s["Protocol"], s["Endpoint"]) for s in page["Subscriptions"]]
        return SnsSeen(arn, attrs.get("Policy"), ours, tuple(subs), int(attrs.get("SubscriptionsPending", 0) or 0))

    def plan(self, want: SnsSpec, have: SnsSeen | None) -> list[Change]:
        changes: list[Change] = []
        if have is None:
            changes.append(Change(self.name, "create", f"topic {want.name}", "not found", {"kind": "topic"}, spec=want))
        else:
            if not have.ours:
                raise OwnershipError(f"sns: topic {want.name} exists and is not the stack's",
                                     hint="set names.topic to another name, or use another --stack")
            if not same_policy(have.policy, want.policy):
                changes.append(Change(self.name, "update", f"topic {want.name}",
                                      "policy -> CloudWatch of this account only", {"kind": "policy"}, spec=want))
        subs = have.subscriptions if have else ()
        emails = [s for s in subs if s.protocol == "email"]
        if want.email and not any(s.endpoint == want.email for s in emails):
            changes.append(Change(self.name, "create", f"e-mail subscription {want.email}", "not found",
                                  {"kind": "subscribe", "email": want.email}, spec=want))
        for s in emails:
            if s.endpoint != want.email and not s.pending:
                changes.append(Change(self.name, "delete", f"e-mail subscription {s.endpoint}",
                                      "no longer configured", {"kind": "unsubscribe", "arn": s.arn}, spec=want))
        return changes

    def apply(self, ctx: Context, change: Change) -> SnsSeen | None:
        sns = ctx.aws.sns
        before: SnsSeen | None = change.before
        if change.kind == "topic" and change.action == "delete":
            sns.delete_topic(TopicArn=change.params["arn"])
            return None
        if change.kind == "unsubscribe":
            sns.unsubscribe(SubscriptionArn=change.params["arn"])
            if before is None:
                return None
            return replace(before, subscriptions=tuple(s for s in before.subscriptions if s.arn != change.params["arn"]))
        spec: SnsSpec = change.spec
        if change.kind == "topic":
            arn = sns.create_topic(Name=spec.name, Tags=tags(spec.stack, self.name, spec.name),
                                   Attributes={"Policy": policy_json(spec.policy),
                                               "DisplayName": f"flowwatch {spec.stack}"[:100]})["TopicArn"]
            return SnsSeen(arn, spec.policy, True)
        if change.kind == "policy":
            sns.set_topic_attributes(TopicArn=spec.arn, AttributeName="Policy", AttributeValue=policy_json(spec.policy))
            return replace(before, policy=spec.policy) if before else SnsSeen(spec.arn, spec.policy, True)
        if change.kind == "subscribe":
            email = change.params["email"]
            arn = sns.subscribe(TopicArn=spec.arn, Protocol="email", Endpoint=email)["SubscriptionArn"]
            sub = Subscription(arn if arn.startswith("arn:") else PENDING_ARN, "email", email)
            notes: tuple[str, ...] = ()
            if sub.pending or arn.lower().startswith("pending"):
                notes = (f"{email} must confirm the subscription (check the inbox) before alarms are e-mailed",)
            base = before or SnsSeen(spec.arn, spec.policy, True)
            return replace(base, subscriptions=base.subscriptions + (sub,), notes=base.notes + notes)
        raise ValueError(f"sns: unknown change {change.kind!r}")

    def plan_destroy(self, have: SnsSeen | None, options: DestroyOptions) -> list[Change]:
        if have is None or not have.ours:
            return []
        changes = [Change(self.name, "delete", f"subscription {s.endpoint}", "down", {"kind": "unsubscribe", "arn": s.arn})
                   for s in have.subscriptions if not s.pending]
        return changes + [Change(self.name, "delete", f"topic {have.arn.rsplit(':', 1)[-1]}", "down",
                                 {"kind": "topic", "arn": have.arn})]

    def publish(self, stack: Stack, have: SnsSeen | None) -> None:
        stack.topic_arn = have.arn if have else PENDING

    def found(self, have: SnsSeen | None) -> str | None:
        if have is None:
            return None
        subs = ", ".join(f"{s.endpoint} ({'pending confirmation' if s.pending else 'confirmed'})"
                         for s in have.subscriptions if s.protocol == "email")
        return f"{have.arn.rsplit(':', 1)[-1]}" + (f", e-mail: {subs}" if subs else "")

    def status(self, have: SnsSeen | None) -> StatusDetail:
        if have is None:
            return StatusDetail()
        return StatusDetail(subscriptions=tuple(SubscriptionState(s.protocol, s.endpoint, not s.pending)
                                                for s in have.subscriptions),
                            pending_subscriptions=have.pending_count, notes=have.notes, ids={"topic": have.arn})
