"""The async result pipeline in the templates: event source, queue timing, the sweeper schedule, least privilege."""

from __future__ import annotations

import json
from typing import Any

from functions.config.async_settings import ASYNC_ENVIRONMENT_VARIABLES, AsyncSettings
from tests.helpers.synth import Synthesized, ref_id


def function(synth: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = synth.resources("AWS::Lambda::Function", {"Handler": handler}).items()
    return logical_id, resource["Properties"]


def statements_of(synth: Synthesized, props: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = ref_id(props["Role"])
    found: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if role_id in [ref_id(role) for role in policy["Properties"]["Roles"]]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def actions(statements: list[dict[str, Any]]) -> set[str]:
    result: set[str] = set()
    for statement in statements:
        value = statement["Action"]
        result.update([value] if isinstance(value, str) else value)
    return result


def test_result_function_consumes_the_queue_reporting_batch_item_failures(dev: Synthesized) -> None:
    results_id, props = function(dev, "functions.handlers.results.handler.lambda_handler")
    assert props["Architectures"] == ["arm64"]
    [mapping] = [r["Properties"] for r in dev.resources("AWS::Lambda::EventSourceMapping").values()]
    assert ref_id(mapping["FunctionName"]) == results_id
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10
    # A flood of notifications (a burst of completions, or forged ones) waits in the queue instead of taking
    # the account's concurrency from the router.
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 10}
    queue = next(
        r["Properties"] for r in dev.resources("AWS::SQS::Queue").values() if "RedrivePolicy" in r["Properties"]
    )
    assert queue["VisibilityTimeout"] >= 6 * props["Timeout"]


def test_sweeper_runs_on_a_schedule_one_at_a_time(dev: Synthesized) -> None:
    sweeper_id, props = function(dev, "functions.handlers.sweeper.handler.lambda_handler")
    assert props["ReservedConcurrentExecutions"] == 1
    # One rule runs the sweeper (the drift job has its own, on the stage's drift.schedule).
    rules = [r["Properties"] for r in dev.resources("AWS::Events::Rule").values()]
    [rule] = [r for r in rules if ref_id(r["Targets"][0]["Arn"]) == sweeper_id]
    assert rule["ScheduleExpression"] == "rate(5 minutes)"


def test_async_functions_read_exactly_the_async_settings(dev: Synthesized) -> None:
    for handler in (
        "functions.handlers.results.handler.lambda_handler",
        "functions.handlers.sweeper.handler.lambda_handler",
    ):
        environment = function(dev, handler)[1]["Environment"]["Variables"]
        assert set(ASYNC_ENVIRONMENT_VARIABLES) <= set(environment)
        assert AsyncSettings.from_env(environment) is not None


def test_result_and_sweeper_roles_are_least_privilege(dev: Synthesized) -> None:
    _, results = function(dev, "functions.handlers.results.handler.lambda_handler")
    result_actions = actions(statements_of(dev, results))
    assert not [a for a in result_actions if "*" in a and not a.startswith("xray:")], result_actions
    assert {"dynamodb:UpdateItem", "dynamodb:GetItem", "s3:GetObject", "sqs:DeleteMessage"} <= result_actions
    assert not result_actions & {"dynamodb:DeleteItem", "dynamodb:PutItem", "s3:PutObject", "dynamodb:Query"}
    _, sweeper = function(dev, "functions.handlers.sweeper.handler.lambda_handler")
    sweeper_statements = statements_of(dev, sweeper)
    assert "dynamodb:Query" in actions(sweeper_statements)
    assert not actions(sweeper_statements) & {"sqs:ReceiveMessage", "s3:PutObject", "dynamodb:DeleteItem"}
    query = next(s for s in sweeper_statements if "dynamodb:Query" in s["Action"])
    assert "/index/by_status" in json.dumps(query["Resource"])


def test_sweeper_reads_only_the_accepted_job_markers_of_the_inputs(dev: Synthesized) -> None:
    _, sweeper = function(dev, "functions.handlers.sweeper.handler.lambda_handler")
    reads = json.dumps([s["Resource"] for s in statements_of(dev, sweeper) if "s3:GetObject" in s["Action"]])
    assert "/input/*.accepted.json" in reads
    assert '/input/*"' not in reads  # never the inputs themselves
    _, results = function(dev, "functions.handlers.results.handler.lambda_handler")
    assert "/input/" not in json.dumps([s["Resource"] for s in statements_of(dev, results)])


def test_roles_that_check_for_objects_may_list_the_bucket(dev: Synthesized) -> None:
    # Without s3:ListBucket a missing object is a 403 like a denial: an expired result or an output not written
    # yet could not be told apart from a broken grant (S3 HeadObject docs).
    for handler in (
        "functions.handlers.router.handler.lambda_handler",
        "functions.handlers.results.handler.lambda_handler",
        "functions.handlers.sweeper.handler.lambda_handler",
    ):
        _, props = function(dev, handler)
        listing = [s for s in statements_of(dev, props) if s["Action"] == "s3:ListBucket"]
        assert len(listing) == 1, handler
        assert "Fn::GetAtt" in listing[0]["Resource"]  # the bucket itself, no object wildcard
