"""The AWS limits this project checks or relies on, each stated once with the AWS page it comes from.

Pure constants (no imports beyond ``typing``), so the router's cold start, the serving container, the local
runtimes and the CDK app can all read them. Project choices (default sizes, batching bounds) live with the
config that uses them; only AWS's own numbers are here.
"""

from __future__ import annotations

from typing import Final

_MB: Final[int] = 1024 * 1024

# --- AWS Lambda (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html) ---
# Function memory: 128 MB to 10,240 MB.
LAMBDA_MEMORY_MIN_MB: Final[int] = 128
LAMBDA_MEMORY_MAX_MB: Final[int] = 10_240
# Function timeout: at most 900 s (15 minutes).
LAMBDA_MAX_TIMEOUT_S: Final[int] = 900
# Synchronous invocation payload, request and response alike: 6 MB (6,291,556 bytes), the whole event JSON.
LAMBDA_MAX_INVOKE_PAYLOAD_BYTES: Final[int] = 6_291_556
# The router's body limit (a project choice, derived from the number above). API Gateway's proxy event holds
# the body JSON-escaped beside the headers (twice: headers and multiValueHeaders, at most 10,240 bytes of
# request line and headers each) and the request context (~2 KB): 6,000,000 leaves 291,556 bytes, which is
# those ~25 KB plus 4.4% of the body for escaping (every '"' and '\' in the body takes two bytes in the event).
# A numeric tensor's body escapes only its keys' quotes (~0.1%); a body of short BYTES strings can escape
# more, and its event then fails at API Gateway (502) before the router can answer 413.
LAMBDA_MAX_BODY_BYTES: Final[int] = 6_000_000

# --- SageMaker Serverless Inference (https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html) ---
# Memory sizes: 1024 MB to 6144 MB in 1024 MB steps.
SERVERLESS_MEMORY_SIZES_MB: Final[tuple[int, ...]] = (1024, 2048, 3072, 4096, 5120, 6144)
# MaxConcurrency of one serverless endpoint: 1 to 200.
SERVERLESS_MAX_CONCURRENCY: Final[int] = 200
# Default quota on the total MaxConcurrency of all serverless endpoints in a region (1000 in the largest
# regions, 500 in others; raisable through Service Quotas, so the stage config states its own budget).
SERVERLESS_REGION_CONCURRENCY_DEFAULT: Final[int] = 1000
# InvokeEndpoint payload on a serverless endpoint: 4 MB.
SERVERLESS_MAX_BODY_BYTES: Final[int] = 4 * _MB

# --- SageMaker real-time and asynchronous inference
# (https://docs.aws.amazon.com/sagemaker/latest/dg/realtime-endpoints.html,
#  https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference.html) ---
# InvokeEndpointAsync input object in S3: up to 1 GB.
ASYNC_MAX_INPUT_BYTES: Final[int] = 1024 * _MB
# AsyncInferenceClientConfig / InvokeEndpointAsync InvocationTimeoutSeconds: 1 to 3600 s.
ASYNC_MAX_INVOCATION_TIMEOUT_S: Final[int] = 3600
# InvokeEndpointAsync RequestTTLSeconds: 60 s to 21,600 s (6 h).
ASYNC_MIN_REQUEST_TTL_S: Final[int] = 60
ASYNC_MAX_REQUEST_TTL_S: Final[int] = 21_600

# --- Amazon API Gateway REST APIs (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html) ---
# Integration timeout: 50 ms to 29 s (unless the account has a raised quota; we do not assume one).
API_GATEWAY_MIN_TIMEOUT_MS: Final[int] = 50
API_GATEWAY_MAX_TIMEOUT_MS: Final[int] = 29_000
# Request payload: 10 MB.
API_GATEWAY_MAX_BODY_BYTES: Final[int] = 10 * _MB

# --- Amazon CloudWatch (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html,
#  https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html) ---
# The retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_DAYS: Final[tuple[int, ...]] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
# An alarm's evaluation periods x period may not exceed one day.
ALARM_MAX_WINDOW_S: Final[int] = 86_400

# --- Amazon SQS and its Lambda event source
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html,
#  https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html) ---
# Queue visibility timeout: at most 12 hours.
SQS_MAX_VISIBILITY_TIMEOUT_S: Final[int] = 43_200
# Visibility timeout of a queue feeding Lambda: at least 6x the function timeout, or batches come back
# while they are still being processed.
SQS_LAMBDA_VISIBILITY_FACTOR: Final[int] = 6
# Messages per batch of an SQS event source without a batching window.
SQS_LAMBDA_MAX_BATCH_SIZE: Final[int] = 10

# --- AWS CloudFormation (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html) ---
# Per stack: 500 resources, 200 outputs, 200 parameters; a template uploaded through S3 (as the CDK CLI does
# for any template over 50 KB) may be up to 1 MB.
CLOUDFORMATION_MAX_RESOURCES: Final[int] = 500
CLOUDFORMATION_MAX_OUTPUTS: Final[int] = 200
CLOUDFORMATION_MAX_PARAMETERS: Final[int] = 200
CLOUDFORMATION_MAX_TEMPLATE_BYTES: Final[int] = 1024 * 1024
# Stack names: a letter, then letters, digits and '-', at most 128 characters.
CLOUDFORMATION_MAX_STACK_NAME: Final[int] = 128
