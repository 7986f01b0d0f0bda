"""The caller's own data: export it as a zip, or erase the account."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from bentos.api.deps import CallerDep, PlatformDep
from bentos.api.views import error_responses
from bentos.api.views_notify import ErasureView
from bentos.core.privacy import erase_account, export_account

router = APIRouter(tags=["accounts"])
ZIP = {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}


@router.get("/accounts/me/export", response_class=Response, responses={200: ZIP, **error_responses(401)})
def export_me(platform: PlatformDep, account: CallerDep) -> Response:
    """Everything we hold about you as a zip: account, uploads (audio included), personas, usage, statements,
    conversations, consent challenges, webhooks (without secrets) and notifications."""
    data = export_account(platform.sessions, platform.blobs, account)
    headers = {"Content-Disposition": f'attachment; filename="voxpersona-{account.id}.zip"'}
    return Response(data, media_type="application/zip", headers=headers)


@router.delete("/accounts/me", responses=error_responses(401))
def erase_me(platform: PlatformDep, account: CallerDep) -> ErasureView:
    """Erase your account: every persona is revoked (provider file deleted, voice retired), uploads and texts
    are deleted, name and email pseudonymised, keys stop working at once. Ledger rows stay (pseudonymous)."""
    return ErasureView.of(erase_account(platform.sessions, platform.blobs, account))
