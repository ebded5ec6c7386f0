"""Input the registry cannot use is refused at the door, with a clear 4xx: never a 500.

PostgreSQL text cannot hold NUL, and no UTF-8 can hold a lone surrogate (JSON's ``"\\ud800"``).
Every path, query parameter and form field of every request is checked here, once, before any
view runs; JSON bodies are read through :func:`json_body`, which also refuses nesting deeper
than any contract needs. Bodies larger than ``MAX_CONTENT_LENGTH`` get 413 from Flask itself.
No route takes files: a form that sends one gets 400.

Integers are bounded the same way everywhere: ids in the path by the ``id`` converter (past
the range the route is not there: 404), numbers in a query or a form by :func:`whole_number`.
An id column is PostgreSQL's ``integer``; a larger number would be an error of the database.
"""

import json
import re

from flask import abort, current_app, g, request
from flask_wtf import FlaskForm
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.routing import IntegerConverter
from wtforms import FormField

# NUL, and the surrogate code points, which only a malformed escape can produce.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_JSON_DEPTH = 32
# The largest id (PostgreSQL's integer; SQLite's is larger) and the largest page number.
MAX_ID = 2**31 - 1


def storable(value: str) -> bool:
    return UNSTORABLE.search(value) is None


class IdConverter(IntegerConverter):
    """``<id:name>``: a row's id, 1 to :data:`MAX_ID`; any other number is no route: 404.
    Registered by ``create_app`` before the routes; every integer in a path is one.

    At most ten digits are matched: a longer run of digits is never turned into an int."""

    regex = r"\d{1,10}"

    def __init__(self, map) -> None:
        super().__init__(map, min=1, max=MAX_ID)


class NotAWholeNumber(ValueError):
    """A number from a query or a form that is not one, or not in its range; says which."""


DIGITS = re.compile(r"[0-9]{1,10}")


def whole_number(value, name: str, default: int | None = None, low: int = 1, high: int = MAX_ID):
    """``value`` (text from a query or a form) as an int from ``low`` to ``high``; ``default``
    when it is absent or blank. Anything else is :class:`NotAWholeNumber`, whose message names
    ``name`` and the range."""
    text = (value or "").strip()
    if not text:
        return default
    number = int(text) if DIGITS.fullmatch(text) else None
    if number is None or not low <= number <= high:
        raise NotAWholeNumber(f"{name} must be a whole number from {low:,} to {high:,}.")
    return number


def int_arg(name: str, default: int | None = None, low: int = 1, high: int = MAX_ID):
    """The query parameter ``name`` as a bounded int (:func:`whole_number`); 400 otherwise."""
    try:
        return whole_number(request.args.get(name), name, default, low, high)
    except NotAWholeNumber as exc:
        abort(400, str(exc))


def int_args(name: str, low: int = 1, high: int = MAX_ID) -> list[int]:
    """Every value of the query parameter ``name`` (``ids=1&ids=2`` or ``ids=1,2``) as bounded
    ints; 400 if one is not."""
    parts = [p for value in request.args.getlist(name) for p in value.split(",") if p.strip()]
    try:
        return [whole_number(part, name, None, low, high) for part in parts]
    except NotAWholeNumber as exc:
        abort(400, str(exc))


def validates_its_form(view):
    """Mark a view whose form (a :class:`StorableForm`) says, field by field, that a field held
    a character the registry cannot store, and re-renders with the message and the rest of
    what was typed: better than a bare 400."""
    view.validates_its_form = True
    return view


UNSTORABLE_FIELD = (
    "{label} held a character the registry cannot store (NUL); it was taken out: check the "
    "text and send it again."
)


class StorableForm(FlaskForm):
    """The form of a view marked :func:`validates_its_form`: each field that held a character
    the registry cannot store (taken out before the view ran) fails with a message."""

    def validate(self, extra_validators=None):
        valid = super().validate(extra_validators)
        held = g.get("unstorable_fields", frozenset())
        for field in _fields(self):
            if field.name in held:
                field.errors = [*field.errors, UNSTORABLE_FIELD.format(label=field.label.text)]
                valid = False
        return valid


def _fields(form):
    for field in form:
        if isinstance(field, FormField):
            yield from _fields(field.form)
        else:
            yield field


def refuse_unstorable() -> None:
    """``before_request``: 400 for a NUL or a lone surrogate anywhere in the URL, or in a form
    whose view does not check its fields itself.

    A view that does (:func:`validates_its_form`) runs with those characters taken out of the
    form, whatever path it takes (a step that re-renders without validating, a lookup of what
    was typed): none of them can reach the database; its form names the fields that held one."""
    values = [request.path]
    for key, value in request.args.items(multi=True):
        values += (key, value)
    if not all(storable(v) for v in values):
        abort(400, UNSTORABLE_REQUEST)
    if request.mimetype not in _FORMS:
        return
    held = {
        UNSTORABLE.sub("", key)
        for key, value in request.form.items(multi=True)
        if not (storable(key) and storable(value))
    }
    if not held:
        return
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, "validates_its_form", False):
        abort(400, UNSTORABLE_REQUEST)
    g.unstorable_fields = frozenset(held)
    request.form = ImmutableMultiDict(
        [
            (UNSTORABLE.sub("", key), UNSTORABLE.sub("", value))
            for key, value in request.form.items(multi=True)
        ]
    )
    request.__dict__.pop("values", None)  # made from the form, if something read it already


UNSTORABLE_REQUEST = "The request holds a character the registry cannot store (NUL)."


def refuse_files() -> None:
    """``before_request``: no route takes files; a form that sends one (a multipart part with
    a file name) gets 400 before any view reads it as text."""
    if request.mimetype == "multipart/form-data" and request.files:
        abort(400, "This form takes no files: send its fields as text.")


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _depth(value, limit: int) -> int:
    """How deeply ``value`` nests, counting no further than ``limit`` + 1."""
    stack, deepest = [(value, 1)], 0
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            break
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, level + 1) for child in children)
    return deepest


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield key
            yield from _strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from _strings(child)


class BadJSON(ValueError):
    """A body that is not JSON the registry can take; the message says why."""


def parse_json(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH):
    """JSON from another system: malformed, too deeply nested, or holding a character no
    table can store is a :class:`BadJSON`."""
    try:
        body = json.loads(raw)
    except RecursionError as exc:
        raise BadJSON("the JSON is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadJSON(f"malformed JSON: {exc}") from exc
    if _depth(body, max_depth) > max_depth:
        raise BadJSON("the JSON is nested too deeply")
    if not all(storable(s) for s in _strings(body)):
        raise BadJSON("the JSON holds a NUL or a lone surrogate")
    return body


def json_body():
    """The request's JSON body, or :class:`BadJSON`."""
    return parse_json(request.get_data(cache=True))


def install(app) -> None:
    app.before_request(refuse_files)
    app.before_request(refuse_unstorable)
