"""Builders for test data: one place that knows what a valid product, user and form look like."""

import itertools
import json
import re

from registry import contract
from registry.auth import services as accounts
from registry.auth.models import Role
from registry.extensions import db
from registry.products.services import ContactData, ProductData
from registry.provisioning import reports as status_reports
from registry.reference.models import ENVIRONMENTS
from registry.requests import services as request_services

_seq = itertools.count(1)

DEFAULT_QUOTAS = {
    "cpu": "cpu-request-0.5-limit-1.5",
    "memory": "memory-request-2-limit-4",
    "storage": "storage-1",
    "snapshot": "snapshot-5",
}


def make_user(role: Role = Role.USER, email: str | None = None, name: str | None = None):
    n = next(_seq)
    email = email or f"{role.value.replace('_', '-')}{n}@example.com"
    user = accounts.create_user(email, name or f"{role.label} {n}", "password", role)
    db.session.commit()
    return user


def product_data(**overrides) -> ProductData:
    n = next(_seq)
    values = {
        "name": f"Product {n}",
        "description": "Permits for river crossings.",
        "ministry_code": "CITZ",
        "cluster_name": "silver",
        "owner": ContactData("Pat", "Owner", f"po{n}@example.com"),
        "primary_lead": ContactData("Tam", "Lead", f"tl{n}@example.com"),
        "secondary_lead": None,
        "quotas": {env: dict(DEFAULT_QUOTAS) for env in ENVIRONMENTS},
    }
    values.update(overrides)
    return ProductData(**values)


def submit(requester, **overrides):
    """A pending create request, committed, as if the requester had used the form."""
    request = request_services.submit_create(product_data(**overrides), requester)
    db.session.commit()
    return request


def form_data(**overrides) -> dict:
    """A valid POST body for the new product form."""
    n = next(_seq)
    data = {
        "name": f"Product {n}",
        "description": "Permits for river crossings.",
        "ministry": "CITZ",
        "cluster": "silver",
        "product_owner-first_name": "Pat",
        "product_owner-last_name": "Owner",
        "product_owner-email": f"po{n}@example.com",
        "primary_lead-first_name": "Tam",
        "primary_lead-last_name": "Lead",
        "primary_lead-email": f"tl{n}@example.com",
        "secondary_lead-first_name": "",
        "secondary_lead-last_name": "",
        "secondary_lead-email": "",
    }
    for env in ENVIRONMENTS:
        for kind, option in DEFAULT_QUOTAS.items():
            data[f"{env}-{kind}"] = option
    data.update(overrides)
    return data


def report(req, step: str, message: str = "", cluster: str = "silver"):
    """One status report from the provisioner, applied as the bridge applies it, and committed:
    what the bridge does with one message on ``registry.status``. Returns the outcome."""
    body = contract.report_body(req.product.licence_plate, cluster, req.id, step, message)
    outcome = status_reports.apply_report(contract.parse_report(json.dumps(body)))
    db.session.commit()
    return outcome


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def csrf_token(client) -> str:
    page = client.get("/login", follow_redirects=True).get_data(as_text=True)
    match = CSRF_META.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, user, password: str = "password"):
    response = client.post(
        "/login",
        data={"email": user.email, "password": password, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def post(client, url: str, data: dict | None = None, htmx: bool = False, **kwargs):
    """POST with the CSRF token a browser would send."""
    data = dict(data or {})
    data.setdefault("csrf_token", csrf_token(client))
    headers = kwargs.pop("headers", {})
    if htmx:
        headers["HX-Request"] = "true"
    return client.post(url, data=data, headers=headers, **kwargs)
