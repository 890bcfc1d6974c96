"""Consent per number: every number's current state, look up one number's state at a
clinic, record an opt-out or opt-in.

Numbers travel in POST bodies, never in URLs (which end up in proxy logs and browser
history), and are listed masked: showing one goes through the audited reveal. The ledger,
its cache and the staff event's audit entry belong to `consent`; this page only asks it.
"""

from __future__ import annotations

import re
import secrets

from flask import flash, render_template, request
from flask_login import login_required

from callgateway.console.access import (
    chosen_clinics,
    me,
    require_clinic,
    services,
    visible_ids,
)
from callgateway.console.blueprint import bp
from callgateway.console.ids import before_arg
from callgateway.console.queries import consent as queries
from callgateway.phone import InvalidNumber, parse_e164
from consent import ledger
from consent import service as consent

_REQUEST_ID = re.compile(r"^[0-9a-f]{16,32}$")
PAGE = 50  # numbers per page of the state list


def _page(
    status: consent.Status | None = None,
    clinic_id: str = "",
    phone: str = "",
    numbers_clinic: str = "",
    before: int | None = None,
) -> str:
    clinic_ids = [c.id for c in chosen_clinics(numbers_clinic)]
    with services().db.session() as db:
        numbers, older = queries.numbers(db, clinic_ids, before, PAGE)
        recent = queries.recent_events(db, visible_ids())
    return render_template(
        "console/consent.html",
        status=status,
        clinic_id=clinic_id,
        phone=phone,
        recent=recent,
        numbers=numbers,
        older=older,
        clinic_filter=numbers_clinic,
        # One id per form: a double submit of either form is one event, yet pressing
        # opt-out and then opt-in on the same page records both. 32 hex, as checked below.
        request_ids={state: secrets.token_hex(16) for state in (ledger.OPTED_OUT, ledger.OPTED_IN)},
    )


@bp.get("/consent")
@login_required
def consent_page() -> str:
    return _page(
        numbers_clinic=request.args.get("clinic", ""),
        before=before_arg(),
    )


def _form() -> tuple[str, str] | None:
    clinic = require_clinic(request.form.get("clinic"))
    raw = (request.form.get("phone") or "").strip()
    try:
        return clinic.id, parse_e164(raw, strict=False)
    except InvalidNumber:
        flash("Enter the number in international form, for example +447700900123.", "error")
        return None


@bp.post("/consent")
@login_required
def consent_lookup() -> tuple[str, int] | str:
    found = _form()
    if found is None:
        return _page(clinic_id=request.form.get("clinic", "")), 400
    clinic_id, phone = found
    svc = services()
    with svc.db.session() as db:
        svc.audit.record(
            db,
            actor=me().actor,
            action="console.consent.lookup",
            clinic_id=clinic_id,
            phone=phone,
        )
    return _page(svc.consent.status(clinic_id, phone), clinic_id, phone)


@bp.post("/consent/record")
@login_required
def consent_record() -> tuple[str, int] | str:
    found = _form()
    state = request.form.get("state")
    request_id = request.form.get("request_id") or ""
    if found is None or state not in (ledger.OPTED_OUT, ledger.OPTED_IN):
        return _page(clinic_id=request.form.get("clinic", "")), 400
    clinic_id, phone = found
    svc = services()
    new = svc.consent.record_staff_event(
        clinic_id,
        phone,
        state,
        me().id,
        request_id=request_id if _REQUEST_ID.match(request_id) else None,
    )
    if new:
        words = "opted out" if state == ledger.OPTED_OUT else "opted back in"
        flash(f"Recorded: this number is now {words} at this clinic.", "info")
    else:
        flash("Already recorded (the form was sent twice).", "info")
    return _page(svc.consent.status(clinic_id, phone), clinic_id, phone)
