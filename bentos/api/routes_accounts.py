"""Sign-up and the caller's own account."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bentos.api.deps import anonymous_ref, body_hash, caller, idempotent, platform_of
from bentos.api.schemas import SignUp, account_view
from bentos.core.accounts import issue_key, revoke_key, sign_up

router = APIRouter(tags=["accounts"])


@router.post("/accounts", status_code=201)
def create_account(body: SignUp, request: Request) -> Response:
    """Sign up; the API key is in this response only — store it."""
    platform = platform_of(request)

    def produce() -> tuple[int, Any]:
        with platform.sessions.begin() as session:
            account, key = sign_up(session, body.name, body.email, body.role, body.payout_wallet)
            return 201, {"account": account_view(account), "apiKey": key}

    def without_key(payload: dict[str, Any]) -> dict[str, Any]:
        # The key exists only in the first answer: a replay never carries it, so it is never stored in clear.
        return {**payload, "apiKey": None}

    req_hash = body_hash(body.model_dump())
    return idempotent(request, anonymous_ref(request), "POST /accounts", req_hash, produce, without_key)


@router.get("/accounts/me")
def me(request: Request) -> dict[str, Any]:
    return account_view(caller(request))


@router.post("/accounts/me/keys", status_code=201)
def new_key(request: Request) -> dict[str, Any]:
    """Issue another API key for the caller (shown once), e.g. to rotate: create, switch, then revoke the old."""
    platform, account = platform_of(request), caller(request)
    with platform.sessions.begin() as session:
        return {"apiKey": issue_key(session, account)}


@router.delete("/accounts/me/keys/current")
def revoke_current_key(request: Request) -> dict[str, Any]:
    """Revoke the key this request is signed with; it stops working at once."""
    platform, account = platform_of(request), caller(request)
    with platform.sessions.begin() as session:
        revoke_key(session, account, request.headers["authorization"])
    return {"revoked": True}
