"""Voicemails with the work item that tracks each, and who claimed it."""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from callgateway.db.models import Recording, StaffUser, WorkItem


def voicemails(
    db: Session, clinic_ids: list[str], todo_only: bool, limit: int
) -> list[tuple[Recording, WorkItem | None, str | None]]:
    """Voicemails newest first, each with its work item and the claimer's email; only
    those not done yet (or never queued) when `todo_only`."""
    stmt = (
        select(Recording, WorkItem, StaffUser.email)
        .outerjoin(
            WorkItem,
            and_(WorkItem.call_sid == Recording.call_sid, WorkItem.kind == "voicemail"),
        )
        .outerjoin(StaffUser, StaffUser.id == WorkItem.claimed_by)
        .where(Recording.kind == "voicemail", Recording.clinic_id.in_(clinic_ids))
    )
    if todo_only:
        stmt = stmt.where((WorkItem.id.is_(None)) | (WorkItem.status != "done"))
    stmt = stmt.order_by(Recording.created_at.desc()).limit(limit)
    return [(rec, item, email) for rec, item, email in db.execute(stmt)]


def voicemail(db: Session, recording_id: int) -> Recording | None:
    """A voicemail recording by id; None for any other recording."""
    recording = db.get(Recording, recording_id)
    return recording if recording is not None and recording.kind == "voicemail" else None


def work_item(db: Session, call_sid: str) -> WorkItem | None:
    """The voicemail's work item, if it has one."""
    stmt = select(WorkItem).where(WorkItem.call_sid == call_sid, WorkItem.kind == "voicemail")
    return db.scalars(stmt).one_or_none()
