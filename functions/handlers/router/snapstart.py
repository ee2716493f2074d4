"""What the router renews after a SnapStart restore.

Every environment restored from one snapshot starts with the memory the snapshot froze, so a ``random.Random``
seeded at init would draw the same retry jitter in all of them, and jitter exists to spread retries apart
(Lambda developer guide, "Handling uniqueness with Lambda SnapStart"). Clients and cached credentials are
fine: botocore opens connections on the first call, after the restore. The runtime's ``snapshot_restore_py``
module exists only in Lambda with SnapStart's runtime hooks; elsewhere (local mode, tests) nothing registers.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable


def reseed_after_restore(*rngs: random.Random) -> Callable[[], None]:
    """A hook that reseeds ``rngs`` and the ``random`` module from the OS's entropy (``seed()`` with no value)."""

    def reseed() -> None:
        random.seed()
        for rng in rngs:
            rng.seed()

    return reseed


def register_after_restore(hook: Callable[[], None]) -> bool:
    """Register ``hook`` with the Lambda runtime's after-restore hooks; False where the runtime has none."""
    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return False
    hooks.register_after_restore(hook)
    return True
