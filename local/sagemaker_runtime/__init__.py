"""A local SageMaker runtime: the real sagemaker-runtime REST protocol on 127.0.0.1, so unmodified boto3
(``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``) reaches real ONNX models through the production serving code.

Serverless endpoints answer ``InvokeEndpoint`` (:mod:`.sync_endpoints`); async endpoints answer
``InvokeEndpointAsync`` and run a worker pool that reads inputs from S3 and writes outputs, failures and SNS
notifications (:mod:`.async_worker`), with S3 and SNS at ``aws_endpoint_url`` (moto's server in local mode,
see ``local/aws.py``). Faults are set per endpoint while it runs, from code
(:meth:`LocalSageMakerRuntime.set_fault`) or over HTTP (:mod:`.http_server`): error rates by type, latency
distributions, cold-start windows (also after scaling to zero) or per-container warm pools
(:mod:`.containers`), and throttling above a concurrency limit (:mod:`.faults`).
"""

from local.sagemaker_runtime.async_worker import AsyncEndpointSpec
from local.sagemaker_runtime.containers import ContainerSpec
from local.sagemaker_runtime.errors import DROP_CONNECTION
from local.sagemaker_runtime.faults import FaultSpec, FaultSpecError, LatencySpec
from local.sagemaker_runtime.runtime import LocalSageMakerRuntime

__all__ = [
    "DROP_CONNECTION",
    "AsyncEndpointSpec",
    "ContainerSpec",
    "FaultSpec",
    "FaultSpecError",
    "LatencySpec",
    "LocalSageMakerRuntime",
]
