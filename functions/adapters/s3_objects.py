"""S3 adapter for async payloads: inputs the router writes, outputs and failures the endpoint writes."""

from __future__ import annotations

from typing import Any, Final

from botocore.exceptions import ClientError

from functions.adapters import aws_clients
from functions.adapters.aws_errors import unavailable_when_transient
from functions.config.async_contract import split_s3_uri
from functions.domain.failures import FailureReason

STORE: Final[str] = "the async object store (S3)"
REASON: Final[FailureReason] = FailureReason.OBJECT_STORE_UNAVAILABLE


class S3ObjectStore:
    """Transient S3 failures raise the domain's 503 error (functions/adapters/aws_errors.py).

    Example:
    >>> store = S3ObjectStore("my-async-bucket")
    >>> store.put("async-inputs/iris/abc.json", b"{}")
    's3://my-async-bucket/async-inputs/iris/abc.json'
    """

    def __init__(self, bucket: str, s3_client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = s3_client

    @property
    def s3(self) -> Any:
        return self._client or aws_clients.client("s3")

    def put(self, key: str, body: bytes) -> str:
        with unavailable_when_transient(STORE, REASON):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        return f"s3://{self.bucket}/{key}"

    def delete(self, uri: str) -> None:
        bucket, key = split_s3_uri(uri)
        with unavailable_when_transient(STORE, REASON):
            self.s3.delete_object(Bucket=bucket, Key=key)

    def size(self, uri: str) -> int | None:
        """None when there is no such object. S3 answers 404 for one only to a caller that may list the bucket
        (without s3:ListBucket it is 403, like a denial), so the roles get ListBucket (constructs/async_storage.py)."""
        bucket, key = split_s3_uri(uri)
        try:
            with unavailable_when_transient(STORE, REASON):
                return int(self.s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def read(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        with unavailable_when_transient(STORE, REASON):
            body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def presign(self, uri: str, expires_in: int) -> str:
        bucket, key = split_s3_uri(uri)
        url: str = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )
        return url
