"""The call log: every call at the user's clinics, numbers masked until revealed; filtered
by who handled it, outcome and day (on each clinic's calendar), and searched by number.

A number travels in a POST body, never in a URL (URLs end up in proxy logs and browser
history), and is read in whatever format a person types, in the clinic country's own
national format (phonenumbers with the country of the clinic's numbers).
"""

from __future__ import annotations

from datetime import date

from flask import abort, flash, render_template, request
from flask_login import login_required

from callgateway.config import Clinic
from callgateway.console.access import chosen_clinics, require_clinic_audited, services
from callgateway.console.blueprint import bp
from callgateway.console.ids import before_arg
from callgateway.console.queries import calls as queries
from callgateway.console.queries import messages
from callgateway.phone import InvalidNumber, country_of, parse_typed

PAGE = 50
HANDLERS = ("ai", "human", "voicemail", "none")


def numbers_for(typed: str, clinics: list[Clinic]) -> tuple[str, ...]:
    """Every E.164 reading of `typed` in the countries of these clinics (one, usually)."""
    found: list[str] = []
    countries = {country_of(n) for c in clinics for n in c.numbers} or {None}
    for country in sorted(countries, key=lambda c: c or ""):
        try:
            found.append(parse_typed(typed, country))
        except InvalidNumber:
            continue
    return tuple(dict.fromkeys(found))


@bp.route("/calls", methods=["GET", "POST"])
@login_required
def calls() -> str | tuple[str, int]:
    args = request.form if request.method == "POST" else request.args
    from_message = request.form.get("message", type=int) if request.method == "POST" else None
    # From the messages page: that text's sender, without the number in the page (another
    # clinic's message is refused, and audited, before anything else is looked at).
    sender = _sender(from_message) if from_message is not None else None
    clinic_filter = args.get("clinic", "")
    clinics = chosen_clinics(clinic_filter)
    handled = args.get("handled", "")
    handled = handled if handled in HANDLERS else ""
    outcome = args.get("outcome", "")[:32]
    try:
        day = date.fromisoformat(args["day"]) if args.get("day") else None
    except ValueError:
        day = None
        flash("That date was not understood: use the date picker (year-month-day).", "error")
    phone = (request.form.get("phone") or "").strip() if request.method == "POST" else ""
    numbers: tuple[str, ...] = ()
    if sender is not None:
        numbers, phone = (sender,), ""
    elif phone:
        numbers = numbers_for(phone, clinics)
        if not numbers:
            flash("That is not a phone number we can read. Type it as you would dial it.", "error")
    filters = queries.Filters(handled or None, outcome or None, day, numbers)
    before = before_arg()
    svc = services()
    with svc.db.session() as db:
        rows, older = ([], None)
        if numbers or not phone:
            rows, older = queries.calls(db, clinics, filters, before, PAGE)
        outcomes = queries.outcomes(db, [c.id for c in clinics])
    return render_template(
        "console/calls.html",
        rows=rows,
        older=older,
        clinic_filter=clinic_filter,
        handled=handled,
        outcome=outcome,
        outcomes=outcomes,
        day=day.isoformat() if day else "",
        phone=phone,
        from_message=from_message,
    )


def _sender(message_id: int) -> str:
    with services().db.session() as db:
        message = messages.incoming_message(db, message_id)
    if message is None:
        abort(404)
    require_clinic_audited(message.clinic_id, "message", message_id)
    return message.phone
