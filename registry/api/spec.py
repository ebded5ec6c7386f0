"""How an /api/v1 endpoint is declared, once: its method and path, the pydantic models of its
query, body and answer, who may call it. The same declaration validates each call, writes each
error as RFC 9457 problem details, and builds the OpenAPI 3.1 document (pydantic's JSON Schema
2020-12 is OpenAPI 3.1's own), so the document cannot drift from what is checked.

Why not a framework (flask-smorest, APIFlask, SpecTree): each would need working around for what
this API must do (its errors as ``application/problem+json`` with the forms' field messages, a
documentation page served from the registry's own static files under its CSP, ETags on reads,
idempotency keys, a per-token limit shared by every process); pydantic already does the part
they add, the schemas, and this module is the rest in a page.
"""

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import timedelta

from flask import Response, current_app, g, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..timeutil import utcnow
from . import schemas, tokens
from .models import Access, ApiCall, ApiIdempotency

PROBLEM = "application/problem+json"
STATUS_TITLES = {
    400: "Bad request",
    401: "No valid token",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed",
    415: "Send JSON",
    422: "Invalid input",
    429: "Too many calls",
}


class Problem(Exception):
    """Answer with problem details: ``status``, a ``detail`` a person can act on, field errors."""

    def __init__(self, status: int, detail: str, errors: list[dict] | None = None, headers=None):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors or []
        self.headers = headers or {}

    def response(self) -> Response:
        body = schemas.Problem(
            title=STATUS_TITLES.get(self.status, "Error"),
            status=self.status,
            detail=self.detail,
            errors=[schemas.FieldError(**e) for e in self.errors],
        )
        return Response(
            body.model_dump_json(), status=self.status, mimetype=PROBLEM, headers=self.headers
        )


def pydantic_errors(exc: ValidationError, prefix: str = "") -> list[dict]:
    found = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"])
        found.append({"field": (prefix + where) or "body", "message": error["msg"]})
    return found


@dataclass
class Endpoint:
    method: str
    rule: str
    name: str
    summary: str
    description: str
    tag: str
    access: Access
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = (401, 404, 422, 429)
    etag: bool = False
    idempotent: bool = False

    @property
    def path(self) -> str:
        """The Flask rule as an OpenAPI path: /products/<plate> as /products/{plate}."""
        return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", "/api/v1" + self.rule)

    @property
    def parameters(self) -> list[str]:
        return re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", self.rule)


ENDPOINTS: list[Endpoint] = []


def endpoint(bp, method: str, rule: str, *, tag: str, access: Access = Access.READ, **options):
    """Declare and route an endpoint; the view gets ``query=`` and ``body=`` models as
    declared and returns a model (or a (model, status, headers) tuple)."""

    def wrap(view):
        doc = (view.__doc__ or "").strip().split("\n\n", 1)
        spec = Endpoint(
            method=method,
            rule=rule,
            name=view.__name__,
            summary=doc[0].replace("\n", " "),
            description=doc[1] if len(doc) > 1 else "",
            tag=tag,
            access=access,
            **options,
        )
        ENDPOINTS.append(spec)

        @functools.wraps(view)
        def run(**path):
            try:
                token = authenticate(access)
                limit(token)
                kwargs = dict(path)
                if spec.query is not None:
                    kwargs["query"] = _parse(spec.query, request.args.to_dict(), "")
                if spec.body is not None:
                    kwargs["body"] = _parse(spec.body, _json_body(), "")
                if spec.method == "POST":
                    return once(token, lambda: _respond(spec, view(**kwargs)))
                return _respond(spec, view(**kwargs))
            except Problem as problem:
                db.session.rollback()
                return problem.response()

        bp.add_url_rule(rule, view.__name__, run, methods=[method])
        return run

    return wrap


def _json_body() -> dict:
    if not request.is_json:
        raise Problem(415, "Send the body as JSON, with Content-Type: application/json.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Problem(400, "The body is not a JSON object.")
    return body


def _parse(model: type[BaseModel], values: dict, prefix: str) -> BaseModel:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise Problem(422, "Some fields are not valid.", pydantic_errors(exc, prefix)) from None


def _respond(spec: Endpoint, answer) -> Response:
    status, headers = spec.status, {}
    if isinstance(answer, tuple):
        answer, status, headers = answer
    text = answer.model_dump_json() if isinstance(answer, BaseModel) else json.dumps(answer)
    if spec.etag:
        tag = hashlib.sha256(text.encode()).hexdigest()[:32]
        headers = {**headers, "ETag": f'"{tag}"', "Cache-Control": "private, no-cache"}
        if request.if_none_match.contains(tag):
            return Response(status=304, headers=headers)
    return Response(text, status=status, mimetype="application/json", headers=headers)


def authenticate(access: Access):
    """The token of this call, allowed ``access``; the token's account is the caller."""
    header = request.headers.get("Authorization", "")
    secret = header[7:].strip() if header[:7].lower() == "bearer " else None
    token, why = tokens.check(secret)
    if token is None:
        raise Problem(401, why, headers={"WWW-Authenticate": 'Bearer realm="registry"'})
    allowed = {
        Access.READ: {Access.READ, Access.REQUEST, Access.DECIDE},
        Access.REQUEST: {Access.REQUEST},
        Access.DECIDE: {Access.DECIDE},
    }[access]
    if Access(token.access) not in allowed:
        verb = {Access.REQUEST: "ask for changes", Access.DECIDE: "decide"}[access]
        raise Problem(403, f"This token reads only: it may not {verb}.")
    tokens.touch(token)
    g.api_token = token
    return token


def limit(token) -> None:
    """At most ``API_CALLS_PER_MINUTE`` calls a token in any minute, counted in the database so
    that every process and pod counts together (one upsert a call)."""
    allowed = int(current_app.config["API_CALLS_PER_MINUTE"])
    if not allowed:
        return
    now = utcnow()
    minute = now.replace(second=0, microsecond=0)
    dialect = db.engine.dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    with db.engine.begin() as connection:
        count = connection.scalar(
            insert(ApiCall)
            .values(token_id=token.id, minute=minute, count=1)
            .on_conflict_do_update(
                index_elements=[ApiCall.token_id, ApiCall.minute],
                set_={"count": ApiCall.count + 1},
            )
            .returning(ApiCall.count)
        )
        if now.second == 0 and count == 1:  # now and then: forget the minutes gone
            connection.execute(
                delete(ApiCall).where(ApiCall.minute < minute - timedelta(minutes=5))
            )
    if count > allowed:
        wait = 60 - now.second
        raise Problem(
            429,
            f"This token made {allowed} calls this minute, as many as one may; try again in"
            f" {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )


KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
IDEMPOTENCY_HOURS = 24


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not KEY.match(key):
        raise Problem(
            422,
            "An Idempotency-Key is 1 to 64 letters, digits, or _ . : -",
            [{"field": "Idempotency-Key", "message": "not a key"}],
        )
    return key


def once(token, call) -> Response:
    """``call()`` once per token and Idempotency-Key: the key again answers what the first call
    answered, and a key still being answered is a 409. Without a key, just ``call()``."""
    key = idempotency_key()
    if key is None:
        return call()
    what = f"{request.method} {request.path}"[:300]
    now = utcnow()
    with db.engine.begin() as connection:
        connection.execute(
            delete(ApiIdempotency).where(
                ApiIdempotency.token_id == token.id,
                ApiIdempotency.key == key,
                ApiIdempotency.created_at < now - timedelta(hours=IDEMPOTENCY_HOURS),
            )
        )
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(ApiIdempotency).values(
                        token_id=token.id, key=key, call=what, created_at=now
                    )
                )
            first = None
        except IntegrityError:
            first = connection.execute(
                select(ApiIdempotency).where(
                    ApiIdempotency.token_id == token.id, ApiIdempotency.key == key
                )
            ).one()
    if first is not None:
        if first.call != what:
            raise Problem(422, f"This Idempotency-Key was used for another call: {first.call}.")
        if first.status is None:
            raise Problem(409, "A call with this Idempotency-Key is still being answered.")
        headers = {"Location": first.location} if first.location else {}
        return Response(first.body, status=first.status, mimetype=(
            PROBLEM if first.status >= 400 else "application/json"), headers=headers)  # fmt: skip
    answer, keep = None, False
    try:
        answer = call()
        keep = answer.status_code < 500 and answer.status_code != 429
    except Problem as problem:
        answer = problem.response()
        keep = problem.status not in (401, 403, 429) and problem.status < 500
    finally:
        # The answer is kept for the key (an error too: the same call gets it again); an answer
        # that may change on its own (a limit, a failure) frees the key instead.
        db.session.rollback()
        with db.engine.begin() as connection:
            row = (ApiIdempotency.token_id == token.id) & (ApiIdempotency.key == key)
            if keep:
                connection.execute(
                    update(ApiIdempotency)
                    .where(row)
                    .values(
                        status=answer.status_code,
                        body=answer.get_data(as_text=True),
                        location=answer.headers.get("Location"),
                    )
                )
            else:
                connection.execute(delete(ApiIdempotency).where(row))
    return answer


# --- the OpenAPI document --------------------------------------------------------------------


def openapi() -> dict:
    models: set[type[BaseModel]] = {schemas.Problem}
    for e in ENDPOINTS:
        models.update(m for m in (e.body, e.answer) if m is not None)
    keyed = [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)]
    refs, top = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    components = top.get("$defs", {})

    def ref(model):
        return refs[(model, "validation")]

    problem = {PROBLEM: {"schema": ref(schemas.Problem)}}
    paths: dict = {}
    for e in ENDPOINTS:
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in e.parameters
        ]
        if e.query is not None:
            schema = e.query.model_json_schema()
            for name, prop in schema.get("properties", {}).items():
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in schema.get("required", []),
                        "schema": {k: v for k, v in prop.items() if k != "title"},
                    }
                )
        if e.idempotent or e.method == "POST":
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "the same key sent twice makes one request",
                    "schema": {"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9_.:-]+$"},
                }
            )
        responses = {
            str(e.status): {
                "description": "OK" if e.status == 200 else "Made",
                **(
                    {"content": {"application/json": {"schema": ref(e.answer)}}} if e.answer else {}
                ),
            }
        }
        if e.etag:
            responses["304"] = {"description": "Not modified since the ETag sent"}
        if e.idempotent or e.method == "POST":
            # A key still being answered (409), a key sent for another call or malformed (422).
            for status in (409, 422):
                responses.setdefault(
                    str(status), {"description": STATUS_TITLES[status], "content": problem}
                )
        if e.idempotent:
            responses["200"] = {
                "description": "Sent before with this Idempotency-Key: what it made",
                "content": {"application/json": {"schema": ref(e.answer)}},
            }
        for status in sorted({*e.errors, 401, 429}):
            responses[str(status)] = {"description": STATUS_TITLES[status], "content": problem}
        operation = {
            "operationId": e.name,
            "summary": e.summary,
            "tags": [e.tag],
            "parameters": parameters,
            "responses": responses,
        }
        if e.description:
            operation["description"] = e.description
        if e.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(e.body)}},
            }
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Product Registry API",
            "version": "1",
            "description": "Products, requests and decisions, with the rules of the forms. "
            "See docs/api.md.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
