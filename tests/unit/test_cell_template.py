"""The regional cell's CloudFormation template says what the data-protection story depends
on (private, TLS-only, KMS-encrypted, versioned, tag lifecycle, an app role confined to the
bucket). That it is lint-clean is tests/integration/test_cell_template.py (cfn-lint runs as
a subprocess)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "cloudformation" / "cell.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags kept as {"!Tag": value}."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {f"!{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tagged)


def resources() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)["Resources"]


def test_the_bucket_is_private_versioned_and_kms_encrypted_with_the_cells_key() -> None:
    bucket = resources()["CellBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"!GetAtt": "CellKey.Arn"},
    }
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert "NoncurrentVersionExpiration" in rules["noncurrent-versions"]
    tagged = {
        r["TagFilters"][0]["Value"]
        for r in rules.values()
        if r.get("TagFilters") and r["TagFilters"][0]["Key"] == "data-category"
    }
    assert tagged == {"recording", "voicemail", "appointment", "transcript", "message"}


def test_the_bucket_policy_denies_plain_http_and_unencrypted_puts() -> None:
    statements = resources()["CellBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Deny" for s in statements)
    conditions = [s["Condition"] for s in statements]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}} in conditions
    assert {"Null": {"s3:x-amz-server-side-encryption": "true"}} in conditions


def test_the_app_role_reaches_only_this_bucket() -> None:
    (policy,) = resources()["AppRole"]["Properties"]["Policies"]
    for statement in policy["PolicyDocument"]["Statement"]:
        resource = statement["Resource"]["!Sub"]
        assert resource.startswith("arn:${AWS::Partition}:s3:::${BucketName}")
        assert all(action.startswith("s3:") and "*" not in action for action in statement["Action"])
