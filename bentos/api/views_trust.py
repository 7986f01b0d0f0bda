"""Response models of persona management, reports and the admin routes (camelCase JSON, ISO 8601 times)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from bentos.api.views import IsoTime, View
from bentos.core.personas import PersonaState
from bentos.core.reports import ReportReason, ReportStatus
from bentos.core.review import Decision


class VersionView(View):
    version: int = Field(description="1 for the first edit; the persona as created is version 0")
    changed: list[str] = Field(description="the fields this edit changed (snake_case names)")
    fields: dict[str, Any] = Field(description="every editable field as it stands after this edit")
    metadata_hash: str = Field(description="keccak256 of the attested metadata after this edit")
    created_at: IsoTime


class VersionPage(View):
    items: list[VersionView]


class ReportView(View):
    id: str
    persona_id: str
    persona_name: str | None
    reason: ReportReason
    details: str
    status: ReportStatus
    resolution_note: str | None
    resolved_at: IsoTime
    created_at: IsoTime


class AdminReportView(ReportView):
    reporter_id: str
    resolved_by: str | None


class ReportPage(View):
    items: list[AdminReportView]


class ReviewItemView(View):
    persona_id: str
    name: str
    creator_id: str
    creator_name: str | None
    impersonation_of: str | None = Field(description="the other creator's live persona it sounds like")
    impersonation_name: str | None
    impersonation_creator_id: str | None
    cosine: float | None = Field(description="cosine similarity of the two voices' embeddings")
    created_at: IsoTime


class ReviewQueue(View):
    items: list[ReviewItemView]


class ReviewOutcomeView(View):
    persona_id: str
    decision: Decision
    status: PersonaState


class AccountStandingView(View):
    id: str
    name: str
    email: str
    role: str
    banned_at: IsoTime


class AccountPage(View):
    items: list[AccountStandingView]


class AuditEntryView(View):
    id: int
    admin_id: str
    action: str
    subject_type: str
    subject_id: str
    detail: dict[str, Any]
    created_at: IsoTime


class AuditPageView(View):
    items: list[AuditEntryView]
    next_before: int | None = Field(description="pass as `before` for older entries; null on the last page")
