"""The router Lambda. Importing this package first keeps Powertools' event-handler package from loading
every resolver it has, and its data-classes package from loading every event source (see
functions/handlers/lean_imports.py): the router needs only the REST resolver and its events."""

import time

from functions.handlers.lean_imports import defer_package_init

# The router's init begins here, the first of its modules Lambda imports: its duration (to the end of
# handler.py's wiring) is billed with the first request of an on-demand environment. The runtime's own start
# before it is not seen from here, so the figure is a lower bound of the REPORT line's Init Duration.
INIT_STARTED: float = time.perf_counter()

defer_package_init("aws_lambda_powertools.event_handler")
defer_package_init("aws_lambda_powertools.utilities.data_classes")
