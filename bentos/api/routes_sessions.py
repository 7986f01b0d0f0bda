"""Signing in and out (`vps_…` session tokens) and password reset by a one-time token from the mail outbox."""

from __future__ import annotations

from fastapi import APIRouter, Request

from bentos.api.deps import OPTIONAL_AUTH, CallerDep, PlatformDep
from bentos.api.views import AccountView, error_responses
from bentos.api.views_accounts import (
    NewPassword,
    PasswordChanged,
    PasswordResetRequest,
    PasswordSignIn,
    ResetRequested,
    SessionView,
    SignedOut,
    SignIn,
)
from bentos.core import scopes
from bentos.core.errors import ErrorCode, PlatformError
from bentos.core.sessions import (
    OpenedSession,
    request_password_reset,
    reset_password,
    sign_in_with_key,
    sign_in_with_password,
    sign_out,
)

router = APIRouter(tags=["sessions"])


def _view(opened: OpenedSession) -> SessionView:
    return SessionView(
        session_token=opened.token,
        expires_at=opened.expires_at,  # type: ignore[arg-type]  # IsoTime formats the datetime
        scope=scopes.parse(opened.account.scopes),
        account=AccountView.of(opened.account),
    )


@router.post(
    "/sessions",
    status_code=201,
    responses=error_responses(400, 401, 403, 422, 429),
    openapi_extra=OPTIONAL_AUTH,
)
def create_session(body: SignIn, request: Request, platform: PlatformDep) -> SessionView:
    """Sign in with `email` + `password`, or with an API key as the bearer (the session keeps its scope) →
    a session token that expires after `server.session_ttl_s` (fixed, not extended by use)."""
    ttl_s = platform.server.session_ttl_s
    if isinstance(body, PasswordSignIn):
        return _view(sign_in_with_password(platform.sessions, body.email, body.password, ttl_s))
    authorization = request.headers.get("authorization")
    if not authorization:
        raise PlatformError(
            ErrorCode.UNAUTHENTICATED, "send an email and password, or 'Authorization: Bearer <API key>'", 401
        )
    return _view(sign_in_with_key(platform.sessions, authorization, ttl_s))


@router.get("/sessions/current", responses=error_responses(401))
def current_session(account: CallerDep) -> SessionView:
    """Who this token signs in as (the token itself is not repeated)."""
    return SessionView(
        session_token=None,
        expires_at=None,
        scope=scopes.parse(account.scopes),
        account=AccountView.of(account),
    )


@router.delete("/sessions/current", responses=error_responses(401))
def delete_current_session(platform: PlatformDep, account: CallerDep) -> SignedOut:
    """Sign out: the session token this request carries stops working at once, in every tab that holds it. With
    an API key instead, nothing ends (`signedOut: false`; revoke a key on /accounts/me/keys)."""
    return SignedOut(signed_out=sign_out(platform.sessions, account))


@router.post("/password-resets", status_code=202, responses=error_responses(400, 422))
def create_password_reset(body: PasswordResetRequest, platform: PlatformDep) -> ResetRequested:
    """Mail a one-time reset token to the address if it has an account; the answer is the same either way."""
    request_password_reset(platform.sessions, body.email, platform.server.password_reset_ttl_s)
    return ResetRequested(accepted=True)


@router.post("/password-resets/confirm", responses=error_responses(400, 403, 404, 410, 422))
def complete_password_reset(body: NewPassword, platform: PlatformDep) -> PasswordChanged:
    """Set a new password with the mailed token (once, before it expires); every session of the account ends.
    The token travels in the body, never in the URL, so no access log or proxy records it."""
    account = reset_password(platform.sessions, body.token, body.password)
    return PasswordChanged(account=AccountView.of(account), sessions_ended=True)
