"""Router Lambda entry point (``functions.handlers.router.handler.lambda_handler``): the Open Inference
Protocol over API Gateway REST (v1 proxy events).

The app is built once per environment, at cold start, from the environment's settings and the AWS clients
(functions/handlers/router/app.py has the wiring). ``app`` and ``config`` are what local/openapi.py documents.
"""

from __future__ import annotations

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.async_settings import AsyncSettings
from functions.config.router_settings import RouterSettings
from functions.handlers.router import INIT_STARTED
from functions.handlers.router.app import RouterClients, create_app
from functions.handlers.router.snapstart import register_after_restore, reseed_after_restore

settings = RouterSettings.from_env()
sagemaker = SageMakerBackend()
# The first request's client, made during init: no caller waits for it there.
sagemaker.warm(settings.invoke_budget_ms)
router = create_app(settings, AsyncSettings.from_env(), RouterClients(sagemaker), init_started=INIT_STARTED)
register_after_restore(reseed_after_restore(router.clients.rng))
app = router.resolver
config = router.config
lambda_handler = router.handler
