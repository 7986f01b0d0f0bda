"""The platform calls of the consent widget, the notifications page and the privacy page (typed helpers on
`PlatformClient`, kept here so the shared client stays small)."""

from __future__ import annotations

from typing import Any, cast

from streamlit_app.api_client import PlatformClient


def consent_challenge(api: PlatformClient, file_id: str, language: str) -> dict[str, Any]:
    body = {"fileId": file_id, "language": language}
    return cast(dict[str, Any], api._send("POST", "/consent-challenges", json=body).json())


def consent_recording(api: PlatformClient, challenge_id: str, audio: bytes, filename: str) -> dict[str, Any]:
    files = {"file": (filename, audio)}
    path = f"/consent-challenges/{challenge_id}/recording"
    return cast(dict[str, Any], api._send("POST", path, files=files, timeout=120).json())


def notifications(api: PlatformClient, unread: bool = False) -> dict[str, Any]:
    params = {"unread": "true"} if unread else {}
    return cast(dict[str, Any], api._send("GET", "/notifications", params=params).json())


def mark_read(api: PlatformClient) -> int:
    return int(api._send("POST", "/notifications/read").json()["marked"])


def webhooks(api: PlatformClient) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], api._send("GET", "/webhooks").json()["data"])


def create_webhook(api: PlatformClient, url: str, events: list[str]) -> dict[str, Any]:
    return cast(dict[str, Any], api._send("POST", "/webhooks", json={"url": url, "events": events}).json())


def delete_webhook(api: PlatformClient, webhook_id: str) -> None:
    api._send("DELETE", f"/webhooks/{webhook_id}")


def deliveries(api: PlatformClient, webhook_id: str) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], api._send("GET", f"/webhooks/{webhook_id}/deliveries").json()["data"])


def replay(api: PlatformClient, webhook_id: str, delivery_id: str) -> dict[str, Any]:
    path = f"/webhooks/{webhook_id}/deliveries/{delivery_id}/replay"
    return cast(dict[str, Any], api._send("POST", path).json())


def export_account(api: PlatformClient) -> bytes:
    return api._send("GET", "/accounts/me/export", timeout=120).content


def erase_account(api: PlatformClient) -> dict[str, Any]:
    return cast(dict[str, Any], api._send("DELETE", "/accounts/me").json())
