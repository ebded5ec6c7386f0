"""Dead letters: reports that could not be applied, kept with the reason, for a super admin to
replay (once what was missing is there) or discard with a note."""

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from .. import contract
from ..audit import services as audit
from ..extensions import db
from ..inputs import BadJSON, parse_json
from ..requests import lifecycle
from ..requests.models import Request
from ..timeutil import utcnow
from .models import DeadLetter
from .reports import Outcome, Unprocessable, apply_report


def dead_letter(
    source: str, data: bytes | str, reason: str, subject=None, sequence=None, delivered=None
) -> DeadLetter:
    """Keep a report that cannot be applied, with the reason, for a super admin to look at.
    When its workflow names one of our requests, the letter keeps which (its timeline then
    shows what a super admin did with it)."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = text.replace("\x00", "\\x00")  # PostgreSQL text cannot hold NUL
    letter = DeadLetter(
        source=source,
        subject=subject,
        data=text[:20000],
        reason=reason[:2000],
        stream_sequence=sequence,
        delivered=delivered,
        request_id=_named_request(text),
    )
    db.session.add(letter)
    db.session.flush()
    return letter


def _named_request(text: str) -> int | None:
    """The id of the request a report's workflow names, if it parses and the request exists."""
    try:
        body = parse_json(text)
    except BadJSON:
        return None
    workflow = body.get("workflow") if isinstance(body, dict) else None
    named = contract.parse_workflow(workflow) if isinstance(workflow, str) else None
    if named is None:
        return None
    return db.session.scalar(select(Request.id).where(Request.id == named[2]))


# What a dead-letter list shows: the open ones (nobody has replayed or discarded them), the
# resolved ones, or all.
LETTER_STATES = ("open", "resolved", "all")


def dead_letters(page: int, per_page: int, state: str = "open"):
    query = (
        select(DeadLetter)
        .options(joinedload(DeadLetter.resolved_by), joinedload(DeadLetter.request))
        .order_by(DeadLetter.id.desc())
    )
    if state == "open":
        query = query.where(DeadLetter.resolution.is_(None))
    elif state == "resolved":
        query = query.where(DeadLetter.resolution.is_not(None))
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


class LetterError(Exception):
    """A dead letter cannot be replayed or discarded; the message says why."""


class ReplayFailed(LetterError):
    """The report failed again; the letter stays open with the new reason (committed)."""


def _open_letter(letter_id: int) -> DeadLetter:
    letter = db.session.scalar(
        select(DeadLetter)
        .where(DeadLetter.id == letter_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if letter is None:
        raise LookupError(letter_id)
    if letter.resolution is not None:
        raise LetterError(f"Dead letter #{letter.id} was {letter.resolution} already.")
    return letter


def _resolve(letter: DeadLetter, resolution: str, actor, note: str) -> None:
    """Mark the letter resolved, audit it, and put it on the timeline of the request it names."""
    letter.resolution = resolution
    letter.resolved_at = utcnow()
    letter.resolved_by_id = actor.id
    letter.resolution_note = note
    request = db.session.get(Request, letter.request_id) if letter.request_id else None
    what = f"dead letter #{letter.id}"
    if request is not None:
        lifecycle.note(request, "dead_letter", f"{resolution.capitalize()} {what}: {note}", actor)
    audit.record(
        f"dead_letter_{resolution}",
        target=what + (f" (request #{request.id})" if request is not None else ""),
        detail=f"{note} The report: {letter.data[:500]}",
        actor=actor,
    )
    db.session.flush()


def replay_dead_letter(letter_id: int, actor) -> tuple[DeadLetter, Outcome]:
    """A super admin applies a dead letter's report again, once its cause is fixed: through
    the bridge's own steps (contract.parse_report, then apply_report), in the caller's
    transaction with the letter locked. Applied (or found already applied: a harmless repeat),
    the letter is resolved as replayed, on the request's timeline and in the audit log, all in
    that transaction. Refused again (both refuse before they write), the letter stays open with
    the new reason and :class:`ReplayFailed` says it; the caller commits either way."""
    if not actor.is_super_admin:
        raise PermissionError("Only super admins replay dead letters.")
    letter = _open_letter(letter_id)
    try:
        # Both refuse before they change anything: a refusal leaves only the new reason to write.
        report = contract.parse_report(letter.data)
        outcome = apply_report(report)
        db.session.flush()
    except (contract.InvalidReport, Unprocessable) as exc:
        letter.reason = f"Replayed {utcnow():%Y-%m-%d %H:%M} UTC, failed again: {exc}"[:2000]
        letter.delivered = (letter.delivered or 0) + 1
        db.session.flush()
        raise ReplayFailed(f"Dead letter #{letter.id} failed again: {exc}") from exc
    if letter.request_id is None:
        letter.request_id = outcome.request_id
    note = (
        f"Applied: request #{outcome.request_id} is now {outcome.status}."
        if outcome.applied
        else f"Nothing to change ({outcome.detail}): request #{outcome.request_id} is"
        f" {outcome.status}."
    )
    _resolve(letter, "replayed", actor, note)
    return letter, outcome


# A discard's reason: required, and at most this long.
NOTE_MAX = 1000


class NoteRequired(LetterError):
    """A discard without its reason (or with one too long)."""


def discard_dead_letter(letter_id: int, actor, note: str) -> DeadLetter:
    """A super admin sets a dead letter aside for good, saying why (required)."""
    if not actor.is_super_admin:
        raise PermissionError("Only super admins discard dead letters.")
    note = (note or "").strip()
    if not note:
        raise NoteRequired("Say why the report is discarded: the note is required.")
    if len(note) > NOTE_MAX:
        raise NoteRequired(f"The note is at most {NOTE_MAX:,} characters.")
    letter = _open_letter(letter_id)
    _resolve(letter, "discarded", actor, note)
    return letter
