"""Input the database cannot store is refused at the door, with a clear 400: never a 500.

PostgreSQL text cannot hold NUL, and no UTF-8 can hold a lone surrogate (JSON's ``"\\ud800"``).
Every path, query parameter and form field of every request is checked here, once, before any
view runs; JSON bodies are read through :func:`json_body`, which also refuses nesting deeper
than any contract needs. Bodies larger than ``MAX_CONTENT_LENGTH`` get 413 from Flask itself.
"""

import json
import re

from flask import abort, current_app, request

# NUL, and the surrogate code points, which only a malformed escape can produce.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_JSON_DEPTH = 32


def storable(value: str) -> bool:
    return UNSTORABLE.search(value) is None


def validates_its_form(view):
    """Mark a view whose form refuses such characters itself, field by field, and re-renders
    with the message and the rest of what was typed: better than a bare 400."""
    view.validates_its_form = True
    return view


def refuse_unstorable() -> None:
    """``before_request``: 400 for a NUL or a lone surrogate anywhere in the URL, or in a form
    whose view does not check its fields itself."""
    values = [request.path]
    view = current_app.view_functions.get(request.endpoint)
    own_form = getattr(view, "validates_its_form", False)
    sources = [request.args]
    if request.mimetype in _FORMS and not own_form:
        sources.append(request.form)
    for multidict in sources:
        for key, value in multidict.items(multi=True):
            values += (key, value)
    if not all(storable(v) for v in values):
        abort(400, "The request holds a character the registry cannot store (NUL).")


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
    app.before_request(refuse_unstorable)
