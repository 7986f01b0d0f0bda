"""The admin routes (role admin: 403 for anyone else, 401 without a key): the impersonation review queue,
reports and takedowns, bans, and the append-only audit log of every admin action."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bentos.api.deps import CallerDep, PlatformDep
from bentos.api.schemas_trust import BanAccount, ResolveReport, ReviewNote, UnbanAccount
from bentos.api.views import error_responses
from bentos.api.views_trust import (
    AccountPage,
    AccountStandingView,
    AdminReportView,
    AuditEntryView,
    AuditPageView,
    ReportPage,
    ReviewItemView,
    ReviewOutcomeView,
    ReviewQueue,
)
from bentos.core.admin_audit import audit_log, require_admin
from bentos.core.bans import find_accounts, set_ban
from bentos.core.reports import ReportStatus, list_reports, resolve
from bentos.core.review import Decision, decide, pending_reviews

router = APIRouter(prefix="/admin", tags=["admin"])
ADMIN_ERRORS = (401, 403)


@router.get("/reviews", responses=error_responses(*ADMIN_ERRORS))
def review_queue(platform: PlatformDep, account: CallerDep) -> ReviewQueue:
    """Personas held in `review`: their voice is within the calibrated threshold of another creator's."""
    return ReviewQueue(items=[ReviewItemView.of(r) for r in pending_reviews(platform.sessions, account)])


def _decide(
    platform: PlatformDep, account: CallerDep, voice_id: str, decision: Decision, note: str
) -> ReviewOutcomeView:
    outcome = decide(platform.sessions, account, voice_id, decision, note, platform.jobs.enqueue)
    return ReviewOutcomeView.of(outcome)


@router.post("/reviews/{voice_id}/approve", responses=error_responses(*ADMIN_ERRORS, 400, 404, 409, 422))
def approve_review(
    voice_id: str, body: ReviewNote, platform: PlatformDep, account: CallerDep
) -> ReviewOutcomeView:
    """Approve: the pipeline goes on (register on chain, clone, live)."""
    return _decide(platform, account, voice_id, Decision.APPROVED, body.note)


@router.post("/reviews/{voice_id}/reject", responses=error_responses(*ADMIN_ERRORS, 400, 404, 409, 422))
def reject_review(
    voice_id: str, body: ReviewNote, platform: PlatformDep, account: CallerDep
) -> ReviewOutcomeView:
    """Reject: the persona fails (nothing cloned), its clone fee goes back."""
    return _decide(platform, account, voice_id, Decision.REJECTED, body.note)


@router.get("/reports", responses=error_responses(*ADMIN_ERRORS, 422))
def reports(
    platform: PlatformDep, account: CallerDep, status: ReportStatus | None = ReportStatus.OPEN
) -> ReportPage:
    """Reports: open ones (oldest first) by default; `status` picks resolved ones."""
    return ReportPage(items=[AdminReportView.of(r) for r in list_reports(platform.sessions, account, status)])


@router.post("/reports/{report_id}/resolve", responses=error_responses(*ADMIN_ERRORS, 400, 404, 409, 422))
def resolve_report(
    report_id: str, body: ResolveReport, platform: PlatformDep, account: CallerDep
) -> AdminReportView:
    """`takedown`: the persona is revoked at once (TTS 410, chain revoke queued) and every open report on it is
    resolved; `dismiss`: this report is closed. Reporters are told (report.resolved)."""
    report = resolve(platform.sessions, platform.blobs, account, report_id, body.action, body.note)
    return AdminReportView.of(report)


@router.get("/accounts", responses=error_responses(*ADMIN_ERRORS, 422))
def accounts(
    platform: PlatformDep,
    account: CallerDep,
    email: Annotated[str | None, Query(max_length=254)] = None,
    banned: bool = False,
) -> AccountPage:
    """Find an account by email, or list the banned ones (`banned=true`)."""
    found = find_accounts(platform.sessions, account, email, banned)
    return AccountPage(items=[AccountStandingView.of(a) for a in found])


@router.post("/accounts/{account_id}/ban", responses=error_responses(*ADMIN_ERRORS, 400, 404, 422))
def ban(account_id: str, body: BanAccount, platform: PlatformDep, account: CallerDep) -> AccountStandingView:
    """Ban an account: every key of it gets 403 `account_banned` from the next request on."""
    return AccountStandingView.of(set_ban(platform.sessions, account, account_id, True, body.reason))


@router.post("/accounts/{account_id}/unban", responses=error_responses(*ADMIN_ERRORS, 400, 404, 422))
def unban(
    account_id: str, body: UnbanAccount, platform: PlatformDep, account: CallerDep
) -> AccountStandingView:
    """Lift a ban: the account's keys work again."""
    return AccountStandingView.of(set_ban(platform.sessions, account, account_id, False, body.reason))


@router.get("/audit", responses=error_responses(*ADMIN_ERRORS, 422))
def audit(
    platform: PlatformDep,
    account: CallerDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1)] = None,
    subject: Annotated[str | None, Query(max_length=40)] = None,
) -> AuditPageView:
    """Every admin action, newest first (append-only: nothing here can change or remove an entry)."""
    require_admin(account)
    page = audit_log(platform.sessions, account, limit, before, subject)
    return AuditPageView(items=[AuditEntryView.of(e) for e in page.items], next_before=page.next_before)
