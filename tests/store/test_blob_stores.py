"""The `BlobStore` contract, held by the local folder and the S3-compatible store alike; S3's presigned URLs,
bucket setup and lifecycle rule; reference-checked deletes on S3; `blobs=s3` from the Hydra config.

The S3 side runs over real HTTP against moto's standalone server: it installs from PyPI with the dev
dependencies, speaks the S3 protocol over HTTP like MinIO or AWS, and needs no Docker or network.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from sqlalchemy import create_engine, delete

from bentos.devkit.processes import free_port, terminate, wait_ready
from bentos.store import blob_refs
from bentos.store.blobs import BlobStore, LocalBlobStore
from bentos.store.db import migrate, session_factory
from bentos.store.models import IdempotencyRecord
from bentos.store.s3 import LIFECYCLE_RULE_ID, S3BlobStore

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# Fixed fake credentials: moto accepts any; they keep boto3 from finding (and a test from using) real ones.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "voxpersona-test-key",
    "AWS_SECRET_ACCESS_KEY": "voxpersona-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
CLEARED_ENV = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, with the fake credentials in this process's environment."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in FAKE_ENV.items():
            mp.setenv(name, value)
        for name in CLEARED_ENV:
            mp.delenv(name, raising=False)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-p", str(port), "-H", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(f"{url}/moto-api/", proc, timeout_s=30, what="moto's S3 server")
            yield url
        finally:
            terminate(proc)


def _s3(endpoint: str, **kwargs: object) -> S3BlobStore:
    """A store on a fresh bucket (created on first use), credentials from the environment."""
    kwargs.setdefault("create_bucket", True)
    return S3BlobStore(bucket=f"vp-{uuid.uuid4().hex[:12]}", endpoint_url=endpoint, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return _s3(request.getfixturevalue("s3_endpoint"))


def _forbid_writes(store: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a second put of equal bytes wrote them again")

    if isinstance(store, S3BlobStore):
        monkeypatch.setattr(store.client, "put_object", refuse)
    else:
        monkeypatch.setattr("bentos.store.blobs.atomic_write", refuse)


# -- the contract ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"RIFF\x00\x01 audio bytes", b""], ids=["bytes", "empty"])
def test_round_trip_under_the_content_key(store: BlobStore, data: bytes) -> None:
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.exists(key)
    assert store.get(key) == data


def test_putting_equal_bytes_twice_is_a_no_op(store: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    key = store.put(b"same bytes")
    _forbid_writes(store, monkeypatch)
    assert store.put(b"same bytes") == key
    assert store.get(key) == b"same bytes"


def test_a_missing_key_is_a_key_error(store: BlobStore) -> None:
    key = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(key)
    with pytest.raises(KeyError):
        store.get(key)
    store.delete(key)  # deleting what is not there is a no-op


def test_delete_removes_only_that_blob(store: BlobStore) -> None:
    gone, kept = store.put(b"delete me"), store.put(b"keep me")
    store.delete(gone)
    assert not store.exists(gone)
    with pytest.raises(KeyError):
        store.get(gone)
    assert store.get(kept) == b"keep me"


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "ab" * 31, "", "0" * 63 + "/"])
def test_a_key_that_is_not_a_content_key_is_refused(store: BlobStore, bad: str) -> None:
    for call in (store.get, store.exists, store.delete, lambda k: store.download_url(k, 60)):
        with pytest.raises(KeyError):
            call(bad)


def test_only_s3_has_download_urls(store: BlobStore) -> None:
    key = store.put(b"sample")
    url = store.download_url(key, 60)
    assert (url is None) == isinstance(store, LocalBlobStore)


# -- S3 specifics ------------------------------------------------------------------------------------------------


def test_a_presigned_url_serves_the_bytes_without_credentials(s3_endpoint: str) -> None:
    blobs = _s3(s3_endpoint)
    key = blobs.put(b"ID3 generated audio")
    url = blobs.download_url(key, 300, content_type="audio/mpeg")
    assert url is not None
    response = httpx.get(url)  # a plain client: no AWS credentials, no signing
    assert response.status_code == 200
    assert response.content == b"ID3 generated audio"
    assert response.headers["content-type"] == "audio/mpeg"


def _sigv4_query_signature(url: str, secret: str) -> str:
    """Recompute a presigned GET's SigV4 signature from first principles (not with botocore)."""
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"]
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params))
    canonical = "\n".join(["GET", parts.path, query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"])
    fields = dict(params)
    scope = fields["X-Amz-Credential"].split("/", 1)[1]
    date, region, service, _ = scope.split("/")
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", fields["X-Amz-Date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_a_presigned_url_carries_its_expiry_under_the_signature(s3_endpoint: str) -> None:
    """moto 5.2.5 serves a presigned URL whatever its age or signature (checked: an expired URL and a mangled
    signature both got 200), so waiting for the URL to die would test nothing. S3, MinIO and Ceph refuse a
    SigV4 URL once X-Amz-Date + X-Amz-Expires has passed; this checks the URL says 1 s, dated now, and that
    the signature covers it (a client cannot stretch the lifetime)."""
    blobs = _s3(s3_endpoint)
    key = blobs.put(b"short-lived")
    url = blobs.download_url(key, 1)
    assert url is not None
    fields = dict(parse_qsl(urlsplit(url).query))
    assert fields["X-Amz-Expires"] == "1"
    signed_at = datetime.strptime(fields["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 60
    secret = FAKE_ENV["AWS_SECRET_ACCESS_KEY"]
    assert fields["X-Amz-Signature"] == _sigv4_query_signature(url, secret)
    stretched = url.replace("X-Amz-Expires=1&", "X-Amz-Expires=604800&")
    assert fields["X-Amz-Signature"] != _sigv4_query_signature(stretched, secret)
    with pytest.raises(ValueError):
        blobs.download_url(key, 0)
    with pytest.raises(ValueError):
        blobs.download_url(key, 7 * 24 * 3600 + 1)


def test_presigned_urls_can_name_the_public_host(s3_endpoint: str) -> None:
    blobs = _s3(s3_endpoint, presign_endpoint_url="https://media.example.com")
    url = blobs.download_url(blobs.put(b"x"), 60)
    assert url is not None and url.startswith(f"https://media.example.com/{blobs.bucket}/")


def test_objects_live_under_the_key_prefix(s3_endpoint: str) -> None:
    blobs = _s3(s3_endpoint, key_prefix="/tenant-a/")
    key = blobs.put(b"prefixed")
    listed = blobs.client.list_objects_v2(Bucket=blobs.bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"tenant-a/{key[:2]}/{key[2:4]}/{key}"]


def test_creating_the_store_makes_no_request_and_a_missing_bucket_is_not_created_unasked(
    s3_endpoint: str,
) -> None:
    offline = S3BlobStore(bucket="nowhere", endpoint_url="http://127.0.0.1:9")  # nothing listens on port 9
    assert offline.download_url(hashlib.sha256(b"").hexdigest(), 60) is not None  # presigning is local too
    blobs = _s3(s3_endpoint, create_bucket=False)
    with pytest.raises(ClientError) as exc:
        blobs.put(b"no bucket")
    assert exc.value.response["Error"]["Code"] == "NoSuchBucket"
    with pytest.raises(ClientError):  # a missing bucket is a misconfiguration, not a missing blob
        blobs.get(hashlib.sha256(b"no bucket").hexdigest())


def test_the_generated_audio_rule_keeps_the_buckets_other_rules(s3_endpoint: str) -> None:
    first = _s3(s3_endpoint, key_prefix="p")
    first.client.put_bucket_lifecycle_configuration(
        Bucket=first.bucket,
        LifecycleConfiguration={
            "Rules": [
                {"ID": "ops", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 3}}
            ]
        },
    )
    for days in (30, 7):  # a second replica, or a changed setting, replaces our rule, not adds one
        blobs = S3BlobStore(
            bucket=first.bucket, endpoint_url=s3_endpoint, key_prefix="p", expire_generated_days=days
        )
        blobs.put(b"x")
    rules = {
        r["ID"]: r for r in blobs.client.get_bucket_lifecycle_configuration(Bucket=blobs.bucket)["Rules"]
    }
    assert set(rules) == {"ops", LIFECYCLE_RULE_ID}
    assert rules[LIFECYCLE_RULE_ID]["Filter"]["Prefix"] == "p/generated/"
    assert rules[LIFECYCLE_RULE_ID]["Expiration"]["Days"] == 7


@pytest.mark.parametrize("prefix", ["", "/", "ab/", "0f"])
def test_the_expiry_rule_can_never_cover_content_addressed_blobs(prefix: str) -> None:
    with pytest.raises(ValueError):
        S3BlobStore(bucket="b-" + "x" * 8, generated_prefix=prefix, expire_generated_days=1)


def test_credentials_are_never_printed() -> None:
    blobs = S3BlobStore(bucket="vp-test", access_key_id="AKIDEXAMPLE", secret_access_key="very-secret")
    assert "very-secret" not in repr(blobs) and "very-secret" not in str(vars(blobs).get("_config"))


def test_reference_checked_deletes_work_unchanged_on_s3(s3_endpoint: str, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'refs.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    blobs = _s3(s3_endpoint)
    replay = b"the same stored response, for two accounts"
    with sessions.begin() as session:
        keys = [blob_refs.hold(session, blobs, replay) for _ in range(2)]
        for account in ("acct-a", "acct-b"):
            session.add(
                IdempotencyRecord(
                    key="k",
                    account_ref=account,
                    route="tts",
                    request_hash="0" * 64,
                    status_code=200,
                    body=blob_refs.REPLAY_REF + keys[0].encode(),
                )
            )
    key = keys[0]
    assert keys == [key, key] and blobs.exists(key)

    for account, deleted in (("acct-a", []), ("acct-b", [key])):
        with sessions.begin() as session:
            session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.account_ref == account))
        assert blob_refs.release(sessions, blobs, [key]) == deleted
    assert not blobs.exists(key)
    with sessions.begin() as session:
        assert blob_refs.adopt(session, blobs, key) is False
    engine.dispose()


def test_blobs_s3_config_reaches_the_server(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = f"vp-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("VOXPERSONA_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("VOXPERSONA_S3_BUCKET", bucket)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["blobs=s3", "blobs.create_bucket=true"])
    blobs = instantiate(cfg.blobs)
    assert isinstance(blobs, S3BlobStore) and blobs.bucket == bucket
    key = blobs.put(b"from the config")  # credentials: the fake ones in the environment
    assert blobs.get(key) == b"from the config"
