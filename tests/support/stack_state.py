"""What AWS shows, read straight through boto3 (never through flowwatch):

- :func:`describe_stack`: the stack's resources and their properties, random ids replaced, so the stack an
  interrupted-then-resumed ``up`` leaves can be compared with the one a clean ``up`` leaves;
- :func:`leftovers`: EVERYTHING in the account and region that is not there in a fresh account (tagged
  or not: an orphan is exactly what nobody tagged);
- :func:`untagged`: taggable resources that exist but do not carry ``flowwatch:stack``.
"""

from __future__ import annotations

import json
import re
from typing import Any

STACK_TAG = "flowwatch:stack"
LIVE = ["pending", "running", "stopping", "stopped", "shutting-down"]


def _tags(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return dict(tags)
    return {t["Key"]: t["Value"] for t in tags or ()}


def _doc(doc: Any) -> Any:
    if isinstance(doc, str):
        from urllib.parse import unquote

        doc = json.loads(doc if doc.lstrip().startswith("{") else unquote(doc))
    return doc


class _Ids:
    """Replaces random AWS ids (vpc-..., subnet-..., fl-...) by stable names in order of appearance."""

    PATTERN = re.compile(r"\b(vpc|subnet|igw|acl|rtb|fl|sg|i|eni)-[0-9a-f]{8,17}\b")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.PATTERN.sub(lambda m: self.names.setdefault(m.group(0), f"<{m.group(1)}{len(self.names)}>"),
                                    value)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        return value


def _try(call: Any, *missing: str) -> Any:
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in missing:
            return None
        raise


def describe_stack(session: Any, stack: str = "test") -> dict[str, Any]:
    ec2, logs, iam, s3 = (session.client(n) for n in ("ec2", "logs", "iam", "s3"))
    sns, cw, glue, athena = (session.client(n) for n in ("sns", "cloudwatch", "glue", "athena"))
    ids = _Ids()
    tag = [{"Name": f"tag:{STACK_TAG}", "Values": [stack]}]
    out: dict[str, Any] = {}

    vpcs = ec2.describe_vpcs(Filters=tag)["Vpcs"]
    out["vpcs"] = [{"id": v["VpcId"], "cidr": v["CidrBlock"], "tags": _tags(v.get("Tags"))} for v in vpcs]
    out["subnets"] = [{"id": s["SubnetId"], "vpc": s["VpcId"], "cidr": s["CidrBlock"], "az": s["AvailabilityZone"],
                       "public_ip": s["MapPublicIpOnLaunch"], "tags": _tags(s.get("Tags"))}
                      for s in ec2.describe_subnets(Filters=tag)["Subnets"]]
    out["igws"] = [{"id": g["InternetGatewayId"], "attached": sorted(a["VpcId"] for a in g.get("Attachments", [])),
                    "tags": _tags(g.get("Tags"))}
                   for g in ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]]
    vpc_ids = [v["VpcId"] for v in vpcs]
    if vpc_ids:
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": vpc_ids}])["RouteTables"]
        out["routes"] = sorted((r.get("DestinationCidrBlock", ""), r.get("GatewayId", ""))
                               for t in tables for r in t["Routes"])
        acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": vpc_ids}])["NetworkAcls"]
        out["nacl_entries"] = sorted((e["RuleNumber"], e["Egress"], e["Protocol"], e["RuleAction"], e.get("CidrBlock"))
                                     for a in acls for e in a["Entries"])
    out["flow_logs"] = sorted(({k: f.get(k) for k in ("ResourceId", "LogDestinationType", "LogGroupName",
                                                        "LogDestination", "LogFormat", "TrafficType",
                                                        "MaxAggregationInterval", "DeliverLogsPermissionArn")}
                               | {"tags": _tags(f.get("Tags"))}
                               for f in ec2.describe_flow_logs(Filters=tag)["FlowLogs"]),
                              key=lambda f: f["LogDestinationType"])
    groups = [g for g in logs.describe_log_groups(logGroupNamePrefix=f"/flowwatch/{stack}/")["logGroups"]]
    out["log_groups"] = [{"name": g["logGroupName"], "retention": g.get("retentionInDays"),
                          "tags": logs.list_tags_for_resource(resourceArn=g["arn"].removesuffix(":*"))["tags"]}
                         for g in groups]
    out["metric_filters"] = sorted(
        ({"name": f["filterName"], "group": f["logGroupName"], "pattern": f["filterPattern"],
          "metric": f["metricTransformations"]} for g in groups
         for f in logs.describe_metric_filters(logGroupName=g["logGroupName"])["metricFilters"]),
        key=lambda f: f["name"])
    roles = [r for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(f"flowwatch-{stack}-")]
    out["roles"] = [{"name": r["RoleName"], "trust": _doc(r["AssumeRolePolicyDocument"]),
                     "tags": _tags(iam.list_role_tags(RoleName=r["RoleName"])["Tags"]),
                     "policies": {p: _doc(iam.get_role_policy(RoleName=r["RoleName"], PolicyName=p)["PolicyDocument"])
                                  for p in iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]},
                     "attached": iam.list_attached_role_policies(RoleName=r["RoleName"])["AttachedPolicies"]}
                    for r in roles]
    out["buckets"] = []
    for b in s3.list_buckets().get("Buckets", []):
        name = b["Name"]
        if not name.startswith(f"flowwatch-{stack}-"):
            continue
        out["buckets"].append({
            "name": name,
            "tags": _tags((_try(lambda: s3.get_bucket_tagging(Bucket=name), "NoSuchTagSet") or {}).get("TagSet")),
            "policy": _doc((_try(lambda: s3.get_bucket_policy(Bucket=name), "NoSuchBucketPolicy") or {})
                           .get("Policy", "{}")),
            "public_block": (_try(lambda: s3.get_public_access_block(Bucket=name),
                                  "NoSuchPublicAccessBlockConfiguration") or {}).get("PublicAccessBlockConfiguration"),
            "encryption": (_try(lambda: s3.get_bucket_encryption(Bucket=name),
                                "ServerSideEncryptionConfigurationNotFoundError") or {})
            .get("ServerSideEncryptionConfiguration"),
            "lifecycle": (_try(lambda: s3.get_bucket_lifecycle_configuration(Bucket=name),
                               "NoSuchLifecycleConfiguration") or {}).get("Rules"),
        })
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"] if f":flowwatch-{stack}-" in t["TopicArn"]]
    out["topics"] = [{"arn": arn, "policy": _doc(sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("Policy")),
                      "tags": _tags(sns.list_tags_for_resource(ResourceArn=arn)["Tags"]),
                      "subscriptions": sorted((s["Protocol"], s["Endpoint"]) for s in
                                              sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"])}
                     for arn in topics]
    keep = ("AlarmName", "MetricName", "Namespace", "Statistic", "Period", "EvaluationPeriods", "DatapointsToAlarm",
            "Threshold", "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions", "ActionsEnabled",
            "AlarmDescription", "Metrics", "ThresholdMetricId")
    out["alarms"] = [{**{k: a.get(k) for k in keep},
                      "tags": _tags(cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"])}
                     for a in cw.describe_alarms(AlarmNamePrefix=f"flowwatch-{stack}-")["MetricAlarms"]]
    out["dashboards"] = [{"name": d["DashboardName"],
                          "body": json.loads(cw.get_dashboard(DashboardName=d["DashboardName"])["DashboardBody"]),
                          "tags": _tags(cw.list_tags_for_resource(ResourceARN=d["DashboardArn"])["Tags"])}
                         for d in cw.list_dashboards(DashboardNamePrefix=f"flowwatch-{stack}-")["DashboardEntries"]]
    account = _account(session)
    out["insight_rules"] = [{"name": r["Name"], "state": r["State"], "definition": json.loads(r["Definition"]),
                             "tags": _tags(cw.list_tags_for_resource(ResourceARN=f"arn:aws:cloudwatch:"
                                           f"{session.region_name}:{account}:insight-rule/{r['Name']}")["Tags"])}
                            for r in cw.describe_insight_rules()["InsightRules"]
                            if r["Name"].startswith(f"flowwatch-{stack}-")]
    out["anomaly_detectors"] = sorted(
        (d["SingleMetricAnomalyDetector"]["MetricName"], d["SingleMetricAnomalyDetector"]["Stat"],
         json.dumps(d.get("Configuration"), sort_keys=True))
        for d in cw.describe_anomaly_detectors(Namespace=f"flowwatch/{stack}")["AnomalyDetectors"])
    database = f"flowwatch_{stack.replace('-', '_')}"
    db = _try(lambda: glue.get_database(Name=database), "EntityNotFoundException")
    out["glue"] = None if db is None else {
        "database": {k: db["Database"].get(k) for k in ("Name", "Description")},
        "tags": glue.get_tags(ResourceArn=f"arn:aws:glue:{session.region_name}:{_account(session)}:database/"
                                          f"{database}")["Tags"],
        "tables": [{k: t.get(k) for k in ("Name", "TableType", "Parameters", "PartitionKeys", "StorageDescriptor")}
                   for t in glue.get_tables(DatabaseName=database)["TableList"]],
    }
    workgroups = [w["Name"] for w in athena.list_work_groups()["WorkGroups"] if w["Name"].startswith(f"flowwatch-{stack}-")]
    out["workgroups"] = []
    for name in workgroups:
        wg = athena.get_work_group(WorkGroup=name)["WorkGroup"]
        arn = f"arn:aws:athena:{session.region_name}:{_account(session)}:workgroup/{name}"
        queries = [athena.get_named_query(NamedQueryId=q)["NamedQuery"]
                   for q in athena.list_named_queries(WorkGroup=name)["NamedQueryIds"]]
        out["workgroups"].append({
            "name": name, "configuration": wg.get("Configuration"),
            "tags": _tags(athena.list_tags_for_resource(ResourceARN=arn)["Tags"]),
            "named_queries": sorted((q["Name"], q.get("Description"), q["Database"], q["QueryString"]) for q in queries),
        })
    return ids(out)


def _workgroup_tags(athena: Any, arn: str) -> list[dict[str, str]]:
    # moto: a workgroup created without tags "Does Not Exist" for ListTagsForResource
    return (_try(lambda: athena.list_tags_for_resource(ResourceARN=arn), "InvalidRequestException") or {}).get(
        "Tags", [])


def _account(session: Any) -> str:
    return session.client("sts").get_caller_identity()["Account"]


def leftovers(session: Any) -> dict[str, list[str]]:
    """Every resource a fresh (moto) account does not have, tagged or not. {} = nothing left behind."""
    ec2, logs, iam, s3 = (session.client(n) for n in ("ec2", "logs", "iam", "s3"))
    sns, cw, glue, athena = (session.client(n) for n in ("sns", "cloudwatch", "glue", "athena"))
    vpcs = ec2.describe_vpcs()["Vpcs"]
    live_vpcs = {v["VpcId"] for v in vpcs}
    ours = {v["VpcId"] for v in vpcs if not v["IsDefault"]}
    found: dict[str, list[str]] = {
        "vpcs": sorted(ours),
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if not s.get("DefaultForAz")],
        "igws": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]],
        "security_groups": [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]
                            if g["GroupName"] != "default"],
        "instances": [i["InstanceId"] for r in ec2.describe_instances(Filters=[
            {"Name": "instance-state-name", "Values": LIVE}])["Reservations"] for i in r["Instances"]],
        "flow_logs": [f["FlowLogId"] for f in ec2.describe_flow_logs()["FlowLogs"]],
        # moto keeps a deleted VPC's ACL and route table listed; AWS deletes them with the VPC
        "nacl_entries": [f"{a['NetworkAclId']}#{e['RuleNumber']}" for a in ec2.describe_network_acls()["NetworkAcls"]
                         if a["VpcId"] in live_vpcs for e in a["Entries"]
                         if e["RuleNumber"] not in (100, 32767)],
        "routes": [f"{t['RouteTableId']}:{r.get('DestinationCidrBlock')}" for t in ec2.describe_route_tables()["RouteTables"]
                   if t["VpcId"] in live_vpcs for r in t["Routes"] if r.get("GatewayId") != "local"],
        "log_groups": [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]],
        "metric_filters": [f["filterName"] for f in logs.describe_metric_filters()["metricFilters"]],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"]],
        "buckets": [b["Name"] for b in s3.list_buckets().get("Buckets", [])],
        "topics": [t["TopicArn"] for t in sns.list_topics()["Topics"]],
        "subscriptions": [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]],
        "alarms": [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]],
        "databases": [d["Name"] for d in glue.get_databases()["DatabaseList"]],
        "workgroups": [w["Name"] for w in athena.list_work_groups()["WorkGroups"] if w["Name"] != "primary"],
        "dashboards": [d["DashboardName"] for d in cw.list_dashboards()["DashboardEntries"]],
    }
    # the default VPC's own: its subnets are DefaultForAz, its ACL has only 100/32767, its routes are local or igw
    default_igws = {g["InternetGatewayId"] for g in ec2.describe_internet_gateways()["InternetGateways"]
                    if any(a["VpcId"] not in ours for a in g.get("Attachments", []))}
    found["igws"] = [g for g in found["igws"] if g not in default_igws]
    found["routes"] = [r for r in found["routes"] if not any(r.startswith(t["RouteTableId"]) for t in
                                                             ec2.describe_route_tables()["RouteTables"]
                                                             if t["VpcId"] not in ours)]
    return {k: v for k, v in found.items() if v}


def untagged(session: Any, stack: str = "test") -> list[str]:
    """Taggable resources that exist (not the fresh account's defaults) without this stack's tag."""
    ec2, logs, iam, s3 = (session.client(n) for n in ("ec2", "logs", "iam", "s3"))
    sns, cw, glue, athena = (session.client(n) for n in ("sns", "cloudwatch", "glue", "athena"))
    account, region = _account(session), session.region_name
    bad: list[str] = []

    def check(kind: str, name: str, tags: Any) -> None:
        if _tags(tags).get(STACK_TAG) != stack:
            bad.append(f"{kind} {name}")

    for v in ec2.describe_vpcs()["Vpcs"]:
        if not v["IsDefault"]:
            check("vpc", v["VpcId"], v.get("Tags"))
    for s in ec2.describe_subnets()["Subnets"]:
        if not s.get("DefaultForAz"):
            check("subnet", s["SubnetId"], s.get("Tags"))
    for g in ec2.describe_internet_gateways()["InternetGateways"]:
        check("igw", g["InternetGatewayId"], g.get("Tags"))
    for f in ec2.describe_flow_logs()["FlowLogs"]:
        check("flow log", f["FlowLogId"], f.get("Tags"))
    for g in ec2.describe_security_groups()["SecurityGroups"]:
        if g["GroupName"] != "default":
            check("security group", g["GroupId"], g.get("Tags"))
    for r in ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": LIVE}])["Reservations"]:
        for i in r["Instances"]:
            check("instance", i["InstanceId"], i.get("Tags"))
    for g in logs.describe_log_groups()["logGroups"]:
        check("log group", g["logGroupName"], logs.list_tags_for_resource(resourceArn=g["arn"].removesuffix(":*"))["tags"])
    for r in iam.list_roles()["Roles"]:
        check("role", r["RoleName"], iam.list_role_tags(RoleName=r["RoleName"])["Tags"])
    for b in s3.list_buckets().get("Buckets", []):
        check("bucket", b["Name"], (_try(lambda: s3.get_bucket_tagging(Bucket=b["Name"]), "NoSuchTagSet") or {})
              .get("TagSet"))
    for t in sns.list_topics()["Topics"]:
        check("topic", t["TopicArn"], sns.list_tags_for_resource(ResourceArn=t["TopicArn"])["Tags"])
    for a in cw.describe_alarms()["MetricAlarms"]:
        check("alarm", a["AlarmName"], cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"])
    for d in cw.list_dashboards()["DashboardEntries"]:
        check("dashboard", d["DashboardName"], cw.list_tags_for_resource(ResourceARN=d["DashboardArn"])["Tags"])
    for d in glue.get_databases()["DatabaseList"]:
        check("glue database", d["Name"], glue.get_tags(
            ResourceArn=f"arn:aws:glue:{region}:{account}:database/{d['Name']}")["Tags"])
    for w in athena.list_work_groups()["WorkGroups"]:
        if w["Name"] != "primary":
            check("workgroup", w["Name"], _workgroup_tags(athena, f"arn:aws:athena:{region}:{account}:workgroup/"
                                                                 f"{w['Name']}"))
    return bad


def json_text(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


def account_dump(session: Any) -> dict[str, Any]:
    """Everything the account shows (region-wide), with each resource's full description and tags.

    Two dumps are equal when nothing was created, changed or deleted. moto keeps a deleted VPC's ACLs
    and route tables listed: those of VPCs that no longer exist are left out.
    """
    ec2, logs, iam, s3 = (session.client(n) for n in ("ec2", "logs", "iam", "s3"))
    sns, cw, glue, athena = (session.client(n) for n in ("sns", "cloudwatch", "glue", "athena"))
    account, region = _account(session), session.region_name

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in ("ResponseMetadata",)}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    vpcs = ec2.describe_vpcs()["Vpcs"]
    live = {v["VpcId"] for v in vpcs}
    dump: dict[str, Any] = {
        "vpcs": vpcs, "subnets": ec2.describe_subnets()["Subnets"],
        "igws": ec2.describe_internet_gateways()["InternetGateways"],
        "security_groups": ec2.describe_security_groups()["SecurityGroups"],
        "sg_rules": ec2.describe_security_group_rules()["SecurityGroupRules"],
        "instances": [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]],
        "flow_logs": ec2.describe_flow_logs()["FlowLogs"],
        "acls": [a for a in ec2.describe_network_acls()["NetworkAcls"] if a["VpcId"] in live],
        "route_tables": [t for t in ec2.describe_route_tables()["RouteTables"] if t["VpcId"] in live],
        "log_groups": {g["logGroupName"]: {
            "group": g, "tags": logs.list_tags_for_resource(resourceArn=g["arn"].removesuffix(":*"))["tags"],
            "filters": logs.describe_metric_filters(logGroupName=g["logGroupName"])["metricFilters"]}
            for g in logs.describe_log_groups()["logGroups"]},
        "roles": {r["RoleName"]: {
            "role": iam.get_role(RoleName=r["RoleName"])["Role"],
            "policies": {p: iam.get_role_policy(RoleName=r["RoleName"], PolicyName=p)["PolicyDocument"]
                         for p in iam.list_role_policies(RoleName=r["RoleName"])["PolicyNames"]}}
            for r in iam.list_roles()["Roles"]},
        "buckets": {b["Name"]: {
            "tags": (_try(lambda: s3.get_bucket_tagging(Bucket=b["Name"]), "NoSuchTagSet") or {}).get("TagSet"),
            "policy": (_try(lambda: s3.get_bucket_policy(Bucket=b["Name"]), "NoSuchBucketPolicy") or {}).get("Policy"),
            "public_block": (_try(lambda: s3.get_public_access_block(Bucket=b["Name"]),
                                  "NoSuchPublicAccessBlockConfiguration") or {}).get("PublicAccessBlockConfiguration"),
            "lifecycle": (_try(lambda: s3.get_bucket_lifecycle_configuration(Bucket=b["Name"]),
                               "NoSuchLifecycleConfiguration") or {}).get("Rules"),
            "objects": [(v["Key"], v["VersionId"]) for v in
                        s3.list_object_versions(Bucket=b["Name"]).get("Versions", [])]}
            for b in s3.list_buckets().get("Buckets", [])},
        "topics": {t["TopicArn"]: {
            "attributes": sns.get_topic_attributes(TopicArn=t["TopicArn"])["Attributes"],
            "tags": sns.list_tags_for_resource(ResourceArn=t["TopicArn"])["Tags"],
            "subscriptions": sns.list_subscriptions_by_topic(TopicArn=t["TopicArn"])["Subscriptions"]}
            for t in sns.list_topics()["Topics"]},
        "alarms": {a["AlarmName"]: {"alarm": a, "tags": cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"]}
                   for a in cw.describe_alarms()["MetricAlarms"]},
        "dashboards": {d["DashboardName"]: {
            "body": cw.get_dashboard(DashboardName=d["DashboardName"])["DashboardBody"],
            "tags": cw.list_tags_for_resource(ResourceARN=d["DashboardArn"])["Tags"]}
            for d in cw.list_dashboards()["DashboardEntries"]},
        "insight_rules": {r["Name"]: {"rule": r, "tags": cw.list_tags_for_resource(
            ResourceARN=f"arn:aws:cloudwatch:{region}:{account}:insight-rule/{r['Name']}")["Tags"]}
            for r in cw.describe_insight_rules()["InsightRules"]},
        "anomaly_detectors": sorted((json_text(d) for d in cw.describe_anomaly_detectors()["AnomalyDetectors"])),
        "databases": {d["Name"]: {
            "database": d, "tables": glue.get_tables(DatabaseName=d["Name"])["TableList"],
            "tags": glue.get_tags(ResourceArn=f"arn:aws:glue:{region}:{account}:database/{d['Name']}")["Tags"]}
            for d in glue.get_databases()["DatabaseList"]},
        "workgroups": {w["Name"]: {
            "workgroup": athena.get_work_group(WorkGroup=w["Name"])["WorkGroup"],
            "tags": _workgroup_tags(athena, f"arn:aws:athena:{region}:{account}:workgroup/{w['Name']}"),
            "queries": sorted(athena.get_named_query(NamedQueryId=q)["NamedQuery"]["Name"]
                              for q in athena.list_named_queries(WorkGroup=w["Name"])["NamedQueryIds"])}
            for w in athena.list_work_groups()["WorkGroups"]},
    }
    for workgroup in dump["workgroups"].values():           # moto answers GetWorkGroup with a new CreationTime
        workgroup["workgroup"].pop("CreationTime", None)
    return clean(dump)
