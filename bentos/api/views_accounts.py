"""Response models and request bodies of signing in and key management (camelCase JSON, times ISO 8601)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bentos.api.views import AccountView, IsoTime, View
from bentos.core.accounts import KEY_NAME_MAX_CHARS
from bentos.core.passwords import MAX_CHARS as PASSWORD_MAX_CHARS
from bentos.core.scopes import Scope


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PasswordSignIn(_Body):
    """Sign in with an email and a password."""

    email: str = Field(max_length=254)
    password: str = Field(max_length=PASSWORD_MAX_CHARS)


class KeySignIn(_Body):
    """No fields: sign in with `Authorization: Bearer <API key>` (the session keeps the key's scope)."""


SignIn = PasswordSignIn | KeySignIn  # both or neither of email and password, as the schema says


class NewKeyRequest(_Body):
    name: str = Field(default="", max_length=KEY_NAME_MAX_CHARS)
    scope: Scope = Field(
        default=Scope.FULL, description="full, speech (read + speak and chat) or read (GET only)"
    )


class PasswordResetRequest(_Body):
    email: str = Field(max_length=254)


class NewPassword(_Body):
    token: str = Field(min_length=1, max_length=200, description="the one-time token from the reset mail")
    password: str = Field(max_length=PASSWORD_MAX_CHARS)


class SessionView(View):
    session_token: str | None = Field(description="the bearer token (`vps_…`); in the sign-in answer only")
    expires_at: IsoTime
    scope: Scope
    account: AccountView


class SignedOut(View):
    signed_out: bool


class KeyView(View):
    id: str
    name: str
    prefix: str = Field(description="the key's first characters, to recognise it; never the key")
    scope: Scope
    created_at: IsoTime
    revoked_at: IsoTime


class IssuedKey(View):
    api_key: str = Field(description="shown in this answer only")
    key: KeyView


class ResetRequested(View):
    accepted: bool = Field(description="always true: whether the email has an account is not told")


class PasswordChanged(View):
    account: AccountView
    sessions_ended: bool
