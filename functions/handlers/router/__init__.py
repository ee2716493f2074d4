"""The router Lambda. Importing this package first keeps Powertools' event-handler package from loading
every resolver it has, and its data-classes package from loading every event source (see
functions/handlers/lean_imports.py): the router needs only the REST resolver and its events."""

from functions.handlers.lean_imports import defer_package_init

defer_package_init("aws_lambda_powertools.event_handler")
defer_package_init("aws_lambda_powertools.utilities.data_classes")
