"""The JSON of /api/v1, as pydantic models: they validate what comes in, shape what goes out, and
are the OpenAPI document's schemas (JSON Schema 2020-12, which OpenAPI 3.1 is). The rules of a
product's fields are the forms' (registry/requests/forms.py), applied to the same values."""

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer


def _utc(moment: datetime) -> str:
    """Stored times are naive UTC: written with their offset, as RFC 3339 wants."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


Moment = Annotated[datetime, PlainSerializer(_utc, return_type=str, when_used="json")]

ENV = Literal["tools", "dev", "test", "prod"]
KIND = Literal["cpu", "memory", "storage", "snapshot"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldError(BaseModel):
    field: str = Field(description="the field, as a dotted path: quotas.prod.cpu, owner.email")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class Contact(Strict):
    first_name: str = Field(max_length=200)
    last_name: str = Field(max_length=200)
    email: str = Field(max_length=254)


class Quotas(Strict):
    cpu: str = Field(max_length=60, examples=["cpu-request-0.5-limit-1.5"])
    memory: str = Field(max_length=60, examples=["memory-request-2-limit-4"])
    storage: str = Field(max_length=60, examples=["storage-1"])
    snapshot: str = Field(max_length=60, examples=["snapshot-5"])


class QuotasChange(Strict):
    cpu: str | None = Field(None, max_length=60)
    memory: str | None = Field(None, max_length=60)
    storage: str | None = Field(None, max_length=60)
    snapshot: str | None = Field(None, max_length=60)


class RequestSummary(BaseModel):
    id: int
    kind: Literal["create", "edit", "delete"]
    status: str
    outcome: str
    created_at: Moment


class ProductSummary(BaseModel):
    licence_plate: str
    name: str
    ministry: str
    cluster: str
    state: str
    open_request: RequestSummary | None = None


class ProductPage(BaseModel):
    items: list[ProductSummary]
    next_cursor: str | None = Field(None, description="send as ?cursor= for the next page")


class Namespace(BaseModel):
    name: str
    environment: ENV
    quotas: Quotas


class Product(BaseModel):
    licence_plate: str
    name: str
    description: str
    ministry: str
    cluster: str
    state: str
    created_at: Moment
    contacts: dict[str, Contact | None]
    namespaces: list[Namespace]
    open_request: RequestSummary | None = None
    temporary_increase_ends_on: date | None = None


class Event(BaseModel):
    at: Moment
    kind: str
    status: str
    label: str
    note: str | None = None
    step: str | None = None
    cluster: str | None = None


class Request(BaseModel):
    id: int
    licence_plate: str
    kind: Literal["create", "edit", "delete"]
    status: str
    outcome: str
    requested_by: str
    created_at: Moment
    decided_at: Moment | None = None
    decided_by: str | None = Field(None, description="None when decided by the rules")
    decision_comment: str | None = None
    justification: str | None = None
    quota_ends_on: date | None = None
    usage_evidence: dict | None = None
    asked: dict
    granted: dict | None = None
    timeline: list[Event] = Field(default_factory=list)


class RequestPage(BaseModel):
    items: list[RequestSummary]
    next_cursor: str | None = None


CURSOR = r"^[0-9]{1,9}$"  # an id PostgreSQL's integer holds
WORD = r"^[A-Za-z0-9_-]{1,30}$"


class ProductsQuery(Strict):
    ministry: str | None = Field(None, pattern=WORD, max_length=10)
    cluster: str | None = Field(None, pattern=WORD, max_length=20)
    state: str | None = Field(None, pattern=WORD, max_length=30)
    q: str | None = Field(
        None,
        pattern=r"^[^\x00-\x1f\x7f]{1,100}$",
        description="a licence plate, or the start of a name",
    )
    cursor: str | None = Field(None, pattern=CURSOR, description="next_cursor of the last page")
    limit: int = Field(50, ge=1, le=100)


class RequestsQuery(Strict):
    product: str | None = Field(None, pattern=WORD, max_length=10, description="a licence plate")
    status: str | None = Field(None, pattern=WORD, max_length=30)
    cursor: str | None = Field(None, pattern=CURSOR, description="next_cursor of the last page")
    limit: int = Field(50, ge=1, le=100)


class NewProduct(Strict):
    name: str = Field(max_length=200)
    description: str = Field(max_length=2000)
    ministry: str = Field(max_length=10)
    cluster: str = Field(max_length=20)
    owner: Contact
    primary_lead: Contact
    secondary_lead: Contact | None = None
    quotas: dict[ENV, Quotas]


class Change(Strict):
    """Only what changes; what is left out keeps its live value."""

    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    ministry: str | None = Field(None, max_length=10)
    owner: Contact | None = None
    primary_lead: Contact | None = None
    secondary_lead: Contact | None = None
    remove_secondary_lead: bool = False
    quotas: dict[ENV, QuotasChange] = Field(default_factory=dict)
    justification: str | None = Field(None, max_length=1000)
    quota_ends_on: date | None = Field(
        None, description="the day raised quotas go back (a temporary increase)"
    )
    keep_quotas: bool = Field(
        False, description="with an open temporary increase: end it and keep the quotas for good"
    )


class Deletion(Strict):
    reason: str = Field(max_length=1000)


class Comment(Strict):
    body: str = Field(max_length=2000)


class Decision(Strict):
    decision: Literal["approve", "reject"]
    comment: str | None = Field(None, max_length=2000)
    quotas: dict[ENV, QuotasChange] = Field(default_factory=dict)
    quota_ends_on: date | None = None


class ClusterState(BaseModel):
    cluster: str
    products: list[Product]
