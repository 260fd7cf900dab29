"""ExpectedBucketOwner: every S3 call flowwatch sends names the caller's account as the bucket's owner
(except the calls whose input has no such member), and so does the Athena workgroup's result configuration.

What is checked is what flowwatch SENT (botocore's Stubber compares the final parameters; the full cycle in
test_iam_policy.py records the request headers), never that moto accepted it: moto ignores the header.
"""

from __future__ import annotations

import pytest

from flowwatch.steps.athena import AthenaSeen, AthenaStep

ACCOUNT = "123456789012"
STEP = AthenaStep()


def _aws_with_stubbed_s3():
    import boto3
    from botocore.stub import Stubber

    from flowwatch.aws import Aws

    aws = Aws(boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"))
    aws._account = ACCOUNT                      # as after GetCallerIdentity
    return aws, Stubber(aws.s3)


@pytest.mark.parametrize("operation, params, response", [
    ("put_bucket_policy", {"Bucket": "b", "Policy": "{}"}, {}),
    ("delete_objects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "k"}]}}, {}),
    ("list_object_versions", {"Bucket": "b"}, {}),
    ("get_object", {"Bucket": "b", "Key": "k"}, {}),
    ("delete_bucket", {"Bucket": "b"}, {}),
    ("put_public_access_block", {"Bucket": "b", "PublicAccessBlockConfiguration": {"BlockPublicAcls": True}}, {}),
])
def test_every_bucket_call_names_the_callers_account_as_owner(operation, params, response):
    aws, stub = _aws_with_stubbed_s3()
    stub.add_response(operation, response, {**params, "ExpectedBucketOwner": ACCOUNT})   # fails on any other params
    with stub:
        getattr(aws.s3, operation)(**params)
    stub.assert_no_pending_responses()


def test_create_bucket_has_no_owner_member_and_an_explicit_owner_is_kept():
    aws, stub = _aws_with_stubbed_s3()
    stub.add_response("create_bucket", {}, {"Bucket": "b"})
    stub.add_response("head_bucket", {}, {"Bucket": "b", "ExpectedBucketOwner": "999999999999"})
    with stub:
        aws.s3.create_bucket(Bucket="b")
        aws.s3.head_bucket(Bucket="b", ExpectedBucketOwner="999999999999")
    stub.assert_no_pending_responses()


def test_the_workgroup_results_expect_the_account_as_bucket_owner(ctx):
    want = STEP.desired(ctx)
    assert want.workgroup_config["ResultConfiguration"]["ExpectedBucketOwner"] == ctx.account
    (change,) = [c for c in STEP.plan(want, None) if c.kind == "workgroup"]
    STEP.apply(ctx, change)
    wg = ctx.aws.athena.get_work_group(WorkGroup=want.workgroup)["WorkGroup"]
    assert wg["Configuration"]["ResultConfiguration"]["ExpectedBucketOwner"] == ctx.account


@pytest.mark.parametrize("owner", [None, "999999999999"])
def test_a_workgroup_whose_result_owner_differs_is_repaired(ctx, owner):
    from botocore.stub import Stubber

    want = STEP.desired(ctx)
    result = {k: v for k, v in want.workgroup_config["ResultConfiguration"].items() if k != "ExpectedBucketOwner"}
    if owner:
        result["ExpectedBucketOwner"] = owner
    have = AthenaSeen(want.database, True, want.table_input, want.workgroup, True,
                      {**want.workgroup_config, "ResultConfiguration": result}, {})
    (change,) = [c for c in STEP.plan(want, have) if c.kind == "workgroup"]
    assert change.action == "update"
    wanted = want.workgroup_config["ResultConfiguration"]
    with Stubber(ctx.aws.athena) as stub:          # moto implements no UpdateWorkGroup: check what is sent
        stub.add_response("update_work_group", {}, {"WorkGroup": want.workgroup, "ConfigurationUpdates": {
            "ResultConfigurationUpdates": {"OutputLocation": wanted["OutputLocation"],
                                           "EncryptionConfiguration": wanted["EncryptionConfiguration"],
                                           "ExpectedBucketOwner": ctx.account},
            "EnforceWorkGroupConfiguration": True, "PublishCloudWatchMetricsEnabled": True,
            "BytesScannedCutoffPerQuery": want.workgroup_config["BytesScannedCutoffPerQuery"]}})
        STEP.apply(ctx, change)
        stub.assert_no_pending_responses()
