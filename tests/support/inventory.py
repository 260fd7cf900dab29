"""An inventory of everything a stack can own, read straight through boto3 (not through flowwatch)."""

from __future__ import annotations

from typing import Any


def inventory(session: Any, stack: str = "test") -> dict[str, Any]:
    """Every resource tagged for `stack` or named like it, per service. Empty lists mean nothing left."""
    ec2 = session.client("ec2")
    tag = [{"Name": "tag:flowwatch:stack", "Values": [stack]}]
    logs, iam, s3, sns = session.client("logs"), session.client("iam"), session.client("s3"), session.client("sns")
    cw, glue, athena = session.client("cloudwatch"), session.client("glue"), session.client("athena")
    inv: dict[str, Any] = {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=tag)["Vpcs"]],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=tag)["Subnets"]],
        "igws": [g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=tag)["InternetGateways"]],
        "flow_logs": [f["FlowLogId"] for f in ec2.describe_flow_logs(Filters=tag)["FlowLogs"]],
        "instances": [i["InstanceId"] for r in ec2.describe_instances(Filters=tag + [
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
            for i in r["Instances"]],
        "security_groups": [g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]],
        "log_groups": [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=f"/flowwatch/{stack}/")
                       ["logGroups"]],
        "roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(f"flowwatch-{stack}-")],
        "buckets": [b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"].startswith(f"flowwatch-{stack}-")],
        "topics": [t["TopicArn"] for t in sns.list_topics()["Topics"] if f":flowwatch-{stack}-" in t["TopicArn"]],
        "alarms": [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=f"flowwatch-{stack}-")["MetricAlarms"]],
        "insight_rules": [r["Name"] for r in cw.describe_insight_rules()["InsightRules"]
                          if r["Name"].startswith(f"flowwatch-{stack}-")],
        # anomaly detectors have no tags: those on the stack's own namespace (the built-in detections' metrics)
        "anomaly_detectors": [d["SingleMetricAnomalyDetector"]["MetricName"] for d in cw.describe_anomaly_detectors(
            Namespace=f"flowwatch/{stack}")["AnomalyDetectors"]],
        "databases": [d["Name"] for d in glue.get_databases()["DatabaseList"]
                      if d["Name"] == f"flowwatch_{stack.replace('-', '_')}"],
        "workgroups": [w["Name"] for w in athena.list_work_groups()["WorkGroups"] if w["Name"].startswith(f"flowwatch-{stack}-")],
        "dashboards": [d["DashboardName"] for d in cw.list_dashboards(DashboardNamePrefix=f"flowwatch-{stack}-")
                       ["DashboardEntries"]],
        "nacl_rule_90": [],
    }
    for acl in ec2.describe_network_acls()["NetworkAcls"]:
        if acl["VpcId"] in inv["vpcs"]:
            inv["nacl_rule_90"] += [acl["NetworkAclId"] for e in acl["Entries"] if e["RuleNumber"] == 90 and e["Egress"]]
    tagged = session.client("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "flowwatch:stack", "Values": [stack]}])["ResourceTagMappingList"]
    # moto keeps a deleted Glue database's tags in the tagging API (AWS drops them with the database):
    # count such an ARN only while the database itself still exists.
    inv["tagged"] = sorted(r["ResourceARN"] for r in tagged
                           if ":glue:" not in r["ResourceARN"] or r["ResourceARN"].rsplit("/", 1)[-1] in inv["databases"])
    return inv


def empty(inv: dict[str, Any]) -> dict[str, Any]:
    """The non-empty entries (what a test expects to be {} after down)."""
    return {k: v for k, v in inv.items() if v}
