"""The router Lambda. Importing this package first keeps Powertools' event-handler package from loading
every resolver it has (see functions/handlers/lean_imports.py): the router needs only the REST one."""

from functions.handlers.lean_imports import defer_package_init

defer_package_init("aws_lambda_powertools.event_handler")
