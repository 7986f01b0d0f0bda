"""Sign-up and the caller's own account and keys (create with a name and scope, list, revoke)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bentos.api.deps import CallerDep, PlatformDep, anonymous_ref, idempotent
from bentos.api.schemas import SignUp
from bentos.api.views import AccountView, KeyRevoked, SignedUp, error_responses
from bentos.api.views_accounts import IssuedKey, KeyView, NewKeyRequest
from bentos.core.accounts import list_keys, new_key, open_account, revoke_key, revoke_key_by_id
from bentos.core.errors import ErrorCode, PlatformError
from bentos.core.idempotency import payload_hash

router = APIRouter(tags=["accounts"])


@router.post(
    "/accounts", status_code=201, response_model=SignedUp, responses=error_responses(400, 409, 413, 422)
)
def create_account(body: SignUp, request: Request, platform: PlatformDep) -> Response:
    """Sign up (with a password, to sign in with it later: POST /sessions); the API key is in this response
    only — store it."""

    def produce() -> tuple[int, SignedUp]:
        account, key = open_account(
            platform.sessions,
            body.name,
            body.email,
            body.role,
            body.payout_wallet,
            platform.prices.trial_credit,
            body.password,
        )
        return 201, SignedUp(account=AccountView.of(account), api_key=key)

    def without_key(answer: SignedUp) -> SignedUp:
        # The key exists only in the first answer: a replay never carries it, so it is never stored in clear.
        return answer.model_copy(update={"api_key": None})

    ref = anonymous_ref(request)
    # Not even a hash of the password is kept with the idempotency record.
    fingerprint = payload_hash(body.model_dump(exclude={"password"}))
    return idempotent(request, ref, "POST /accounts", fingerprint, produce, without_key)


@router.get("/accounts/me", responses=error_responses(401))
def me(account: CallerDep) -> AccountView:
    return AccountView.of(account)


@router.post("/accounts/me/keys", status_code=201, responses=error_responses(400, 401, 403, 422))
def create_key(platform: PlatformDep, account: CallerDep, body: NewKeyRequest | None = None) -> IssuedKey:
    """Issue another API key for the caller (shown once), named and scoped (`full`, `speech`, `read`); e.g. to
    rotate: create, switch, then revoke the old."""
    wanted = body or NewKeyRequest()
    key, info = new_key(platform.sessions, account, wanted.name, wanted.scope)
    return IssuedKey(api_key=key, key=KeyView.of(info))


@router.get("/accounts/me/keys", responses=error_responses(401))
def keys(platform: PlatformDep, account: CallerDep) -> list[KeyView]:
    """The caller's API keys, newest first, revoked ones included; never a key itself, only its prefix."""
    return [KeyView.of(k) for k in list_keys(platform.sessions, account)]


@router.delete("/accounts/me/keys/current", responses=error_responses(400, 401))
def revoke_current_key(request: Request, platform: PlatformDep, account: CallerDep) -> KeyRevoked:
    """Revoke the key this request is signed with (for a session opened with a key: that key, and so the
    session); it stops working at once."""
    if account.session_id is None:
        revoke_key(platform.sessions, account, request.headers["authorization"])
    elif account.key_id is not None:
        revoke_key_by_id(platform.sessions, account, account.key_id)
    else:
        raise PlatformError(
            ErrorCode.INVALID_REQUEST,
            "this request is signed with a password session, not a key: DELETE /sessions/current signs out",
            400,
        )
    return KeyRevoked(revoked=True)


@router.delete("/accounts/me/keys/{key_id}", responses=error_responses(401, 403, 404))
def revoke_one_key(key_id: str, platform: PlatformDep, account: CallerDep) -> KeyView:
    """Revoke one of the caller's keys by its id; it stops working at once, and so do sessions opened with it."""
    return KeyView.of(revoke_key_by_id(platform.sessions, account, key_id))
