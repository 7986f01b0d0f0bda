"""An S3-compatible blob store (AWS S3, MinIO, Ceph RGW, R2, …) behind the `BlobStore` protocol (`blobs=s3`).

Keys are the same sha256 content keys as `LocalBlobStore`'s; objects live at `<key_prefix>ab/cd/<sha256>`.
Creating the store makes no network call (Hydra instantiates every config without a server): the client is
built on first use, and only then is the bucket created (`create_bucket: true`) and the lifecycle rule for
generated audio set (`expire_generated_days`). Credentials are never arguments in a committed file: the config
reads them from the environment, and when they are unset boto3's own chain (instance role, web identity) is used.

`download_url` presigns an expiring GET, so the platform can redirect a sample/audio download to the store
instead of streaming the bytes through itself; `LocalBlobStore.download_url` returns None (stream instead).
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bentos.store.blobs import check_key

MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4's limit on a presigned URL's lifetime
LIFECYCLE_RULE_ID = "voxpersona-generated-expiry"
_MISSING = {"404", "NoSuchKey", "NotFound"}


def _missing(exc: ClientError) -> bool:
    """The object (or, for HEAD, which has no body to tell, the bucket) is not there; NoSuchBucket from a GET
    is a configuration error and is raised, never read as a missing blob."""
    return exc.response.get("Error", {}).get("Code") in _MISSING


def _prefix(value: str) -> str:
    value = value.strip("/")
    return f"{value}/" if value else ""


class S3BlobStore:
    """Content-addressed blobs in one bucket of an S3-compatible server."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        key_prefix: str = "",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        addressing_style: str = "path",
        create_bucket: bool = False,
        presign_endpoint_url: str | None = None,
        generated_prefix: str = "generated/",
        expire_generated_days: int | None = None,
        checksums: str = "when_supported",
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        if not bucket:
            raise ValueError("S3BlobStore needs a bucket")
        if addressing_style not in ("path", "virtual", "auto"):
            raise ValueError(f"addressing_style must be path, virtual or auto, not {addressing_style!r}")
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("set both the S3 access key id and the secret access key, or neither")
        if expire_generated_days is not None and expire_generated_days < 1:
            raise ValueError("expire_generated_days must be at least 1 (or null: never expire)")
        generated = _prefix(generated_prefix)
        # The expiry rule must never reach a content-addressed blob (rows reference those): not the whole
        # bucket, not an ab/ fan-out folder.
        if not generated or re.fullmatch(r"[0-9a-f]{2}/", generated.split("/")[0] + "/"):
            raise ValueError(f"generated_prefix {generated_prefix!r} would cover content-addressed blobs")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.key_prefix = _prefix(key_prefix)
        self.generated_prefix = generated
        self.expire_generated_days = expire_generated_days
        self.create_bucket = create_bucket
        self.presign_endpoint_url = presign_endpoint_url
        self._credentials = {
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "aws_session_token": session_token,
        }
        self._config = Config(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            request_checksum_calculation=checksums,
            response_checksum_validation=checksums,
        )
        self._lock = threading.Lock()
        self._s3: Any = None
        self._presigner: Any = None

    def __repr__(self) -> str:  # never the credentials
        return f"S3BlobStore(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r}, prefix={self.key_prefix!r})"

    # -- client ----------------------------------------------------------------------------------------------

    def _new_client(self, endpoint_url: str | None) -> Any:
        session = boto3.session.Session(**self._credentials)
        return session.client("s3", endpoint_url=endpoint_url, config=self._config)

    @property
    def client(self) -> Any:
        """The boto3 S3 client, built (and the bucket prepared, when configured) on first use."""
        if self._s3 is None:
            with self._lock:
                if self._s3 is None:
                    client = self._new_client(self.endpoint_url)
                    if self.create_bucket:
                        self._ensure_bucket(client)
                    if self.expire_generated_days is not None:
                        self._ensure_lifecycle(client, self.expire_generated_days)
                    self._s3 = client
        return self._s3

    def _ensure_bucket(self, client: Any) -> None:
        try:
            client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if not _missing(exc):
                raise
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            client.create_bucket(**kwargs)
        except ClientError as exc:  # another replica created it first
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    def _ensure_lifecycle(self, client: Any, days: int) -> None:
        """Set our one expiry rule, keeping any other rules the bucket has (the PUT replaces them all)."""
        try:
            rules = client.get_bucket_lifecycle_configuration(Bucket=self.bucket).get("Rules", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        ours = {
            "ID": LIFECYCLE_RULE_ID,
            "Filter": {"Prefix": self.key_prefix + self.generated_prefix},
            "Status": "Enabled",
            "Expiration": {"Days": days},
        }
        others = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID]
        client.put_bucket_lifecycle_configuration(
            Bucket=self.bucket, LifecycleConfiguration={"Rules": [*others, ours]}
        )

    def _object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.key_prefix}{key[:2]}/{key[2:4]}/{key}"

    # -- BlobStore -------------------------------------------------------------------------------------------

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        if self.exists(key):
            return key
        self.client.put_object(
            Bucket=self.bucket, Key=self._object_key(key), Body=data, ContentType="application/octet-stream"
        )
        return key

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _missing(exc):
                raise KeyError(key) from exc
            raise
        data: bytes = response["Body"].read()
        return data

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))  # a missing key is a no-op

    def download_url(self, key: str, expires_s: int, content_type: str | None = None) -> str | None:
        """A presigned GET for `key`, valid for `expires_s` seconds; needs no credentials to fetch.

        Presigning is local (no request to the server) and does not check that the blob exists.
        """
        if not 1 <= expires_s <= MAX_PRESIGN_S:
            raise ValueError(f"expires_s must be within 1..{MAX_PRESIGN_S}, not {expires_s}")
        params = {"Bucket": self.bucket, "Key": self._object_key(key)}
        if content_type:
            params["ResponseContentType"] = content_type
        if self._presigner is None:
            self._presigner = (
                self._new_client(self.presign_endpoint_url) if self.presign_endpoint_url else self.client
            )
        url: str = self._presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)
        return url
