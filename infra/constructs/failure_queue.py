"""The on-failure destination of a function that something invokes asynchronously (EventBridge, CloudWatch Logs):
an encrypted, TLS-only queue that holds the failed events for a look, and that nothing consumes."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.guardrails import acknowledge


def failure_queue(scope: Construct, *, retention: Duration, invoked_by: str) -> sqs.Queue:
    """``invoked_by`` says whose failed invocations it holds, for the acknowledgment of its missing DLQ."""
    queue = sqs.Queue(
        scope,
        "Failures",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=retention,
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        f"This queue is itself the on-failure destination of {invoked_by}; nothing consumes it, so it needs no "
        "dead-letter queue of its own.",
    )
    return queue
