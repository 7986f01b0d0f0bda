"""Sign-up and the caller's own account and keys."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bentos.api.deps import CallerDep, PlatformDep, anonymous_ref, body_hash, idempotent
from bentos.api.schemas import SignUp
from bentos.api.views import AccountView, KeyRevoked, NewKey, SignedUp, error_responses
from bentos.core.accounts import new_key, open_account, revoke_key

router = APIRouter(tags=["accounts"])


@router.post(
    "/accounts", status_code=201, response_model=SignedUp, responses=error_responses(400, 409, 413, 422)
)
def create_account(body: SignUp, request: Request, platform: PlatformDep) -> Response:
    """Sign up; the API key is in this response only — store it."""

    def produce() -> tuple[int, SignedUp]:
        account, key = open_account(
            platform.sessions,
            body.name,
            body.email,
            body.role,
            body.payout_wallet,
            platform.prices.trial_credit,
        )
        return 201, SignedUp(account=AccountView.of(account), api_key=key)

    def without_key(answer: SignedUp) -> SignedUp:
        # The key exists only in the first answer: a replay never carries it, so it is never stored in clear.
        return answer.model_copy(update={"api_key": None})

    ref = anonymous_ref(request)
    return idempotent(request, ref, "POST /accounts", body_hash(body), produce, without_key)


@router.get("/accounts/me", responses=error_responses(401))
def me(account: CallerDep) -> AccountView:
    return AccountView.of(account)


@router.post("/accounts/me/keys", status_code=201, responses=error_responses(401))
def create_key(platform: PlatformDep, account: CallerDep) -> NewKey:
    """Issue another API key for the caller (shown once), e.g. to rotate: create, switch, then revoke the old."""
    return NewKey(api_key=new_key(platform.sessions, account))


@router.delete("/accounts/me/keys/current", responses=error_responses(401))
def revoke_current_key(request: Request, platform: PlatformDep, account: CallerDep) -> KeyRevoked:
    """Revoke the key this request is signed with; it stops working at once."""
    revoke_key(platform.sessions, account, request.headers["authorization"])
    return KeyRevoked(revoked=True)
