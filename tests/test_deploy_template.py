"""The SAM template in docs/deploy points at real code and keeps the recommended settings."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from momento_botocore import environment

TEMPLATE = Path(__file__).resolve().parent.parent / "docs" / "deploy" / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !GetAtt, !Sub ... as plain values."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.SequenceNode):  # !Select [0, !Split [...]]
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_scalar(node)}  # type: ignore[arg-type]


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text("utf-8"), Loader=_CloudFormationLoader)  # type: ignore[no-any-return]


def test_the_function_handler_is_the_stream_invalidator() -> None:
    function = load()["Resources"]["InvalidatorFunction"]["Properties"]
    module, _, name = function["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))


def test_every_environment_variable_is_one_the_library_reads() -> None:
    variables = load()["Resources"]["InvalidatorFunction"]["Properties"]["Environment"]
    assert set(variables["Variables"]) <= set(environment.DESCRIPTIONS)
    assert environment.TTL_SECONDS in variables["Variables"]


def test_the_event_source_mapping_reports_partial_failures_with_bounded_retries() -> None:
    resources = load()["Resources"]
    events = resources["InvalidatorFunction"]["Properties"]["Events"]
    ((mapping,),) = [[e["Properties"] for e in events.values() if e["Type"] == "DynamoDB"]]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    assert mapping["MaximumRetryAttempts"] == {"Ref": "MaximumRetryAttempts"}
    assert load()["Parameters"]["MaximumRetryAttempts"]["Default"] <= 10
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {
        "GetAtt": "InvalidatorFailures.Arn"
    }
    assert resources["InvalidatorFailures"]["Type"] == "AWS::SQS::Queue"


def test_the_function_may_read_the_stream_and_report_failures() -> None:
    function = load()["Resources"]["InvalidatorFunction"]["Properties"]
    actions = {
        action
        for policy in function["Policies"]
        for statement in policy["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
        "dynamodb:DescribeTable",  # the Query cache's index keys
        "sqs:SendMessage",
    } <= actions
