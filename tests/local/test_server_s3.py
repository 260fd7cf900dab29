"""The local server's S3 middleware (flowwatch.local.server): bucket policies kept as given without
locking the bucket, and CreateBucket tags applied as AWS does (moto drops them)."""

from __future__ import annotations

import json

import pytest

from tests.local.test_dataplane import (ACCOUNT, REGION, V2, api, aws, flow_log, name,  # noqa: F401 (fixtures)
                                        network, objects, records, server)


@pytest.mark.slow
def test_bucket_policy_is_kept_and_does_not_lock_the_bucket(aws, api, network):
    """moto turns conditional statements into denials; the local AWS stores the policy as given."""
    vpc, _ = network
    s3 = aws("s3")
    bucket = f"fw-{name()}"
    s3.create_bucket(Bucket=bucket)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "Delivery", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/{ACCOUNT}/*",
         "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    flow_log(aws("ec2"), vpc, TrafficType="ALL", LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{bucket}")
    result = api.traffic(region=REGION, fields=V2.fields, lines=records(api, "eni-0123123123123123a", 1), vpc_id=vpc)
    assert result["deliveries"][0]["error"] is None
    assert len(objects(s3, bucket)) == 1                   # delivered, and readable
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_policy(Bucket=bucket)


@pytest.mark.slow
def test_create_bucket_tags_are_applied_as_aws_does(aws):
    """AWS tags a bucket atomically from CreateBucketConfiguration.Tags (moto drops them): the local AWS
    applies them, so an interrupted `up` never leaves an untagged bucket of the stack's."""
    s3 = aws("s3")
    tagged = f"fw-{name()}"
    s3.create_bucket(Bucket=tagged, CreateBucketConfiguration={"Tags": [{"Key": "flowwatch:stack", "Value": "t"}]})
    assert s3.get_bucket_tagging(Bucket=tagged)["TagSet"] == [{"Key": "flowwatch:stack", "Value": "t"}]
    plain = f"fw-{name()}"
    s3.create_bucket(Bucket=plain)
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchTagSet"):
        s3.get_bucket_tagging(Bucket=plain)
