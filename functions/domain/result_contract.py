"""Output checks on the async route: an async result that breaks its model's output contract settles its job
as failed, with the same message a sync call's 502 gives (functions/domain/output_contract.py), so it never
reaches the caller through ``GET /v2/jobs/{id}``.

Example:
    >>> ResultContracts(load_models_config()).breach("iris", "s3://bucket/output/iris-async/x.out", objects)
    OutputContractError("model 'iris' answered outside its contract: output 'probabilities' fails the range ...")
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final, Protocol

from functions.config.model_types import ModelsConfig
from functions.domain.output_contract import OutputContractError, check_answer, has_contract

logger = logging.getLogger(__name__)
# A result is parsed whole to be checked, and Python's floats and lists take several times the JSON's bytes:
# 8 MiB of answer stays well inside the 256 MB the result and sweeper functions run with. A larger result is
# not checked (logged): its job succeeds as the endpoint answered.
CHECKED_RESULT_MAX_BYTES: Final[int] = 8 * 1024 * 1024


class ResultObjects(Protocol):
    """What reading a result needs of the object store (functions/domain/async_jobs.py ``ObjectStore``)."""

    def size(self, uri: str) -> int | None: ...
    def read(self, uri: str) -> bytes: ...


@dataclass(frozen=True)
class ResultContracts:
    """The models whose declared output contracts their async results must keep."""

    config: ModelsConfig
    max_bytes: int = CHECKED_RESULT_MAX_BYTES

    def breach(self, model_name: str, location: str, objects: ResultObjects) -> OutputContractError | None:
        """The first breach of ``model_name``'s contract in the result at ``location``; None when it keeps it,
        when the model declares none (the object is then not read), or when the result is gone or too large."""
        model = self.config.model(model_name)
        if model is None or not has_contract(model):
            return None
        size = objects.size(location)
        if size is None:
            return None  # expired or never written: the job view says so, nothing to check
        if size > self.max_bytes:
            logger.warning(
                "result %s of model %s is %d bytes: too large to check its contract", location, model_name, size
            )
            return None
        try:
            check_answer(model, objects.read(location))
        except OutputContractError as error:
            return error
        return None
