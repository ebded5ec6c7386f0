"""Schemathesis: calls generated from /api/v1's own OpenAPI document, sent to the app with a
token of each kind, must never answer 5xx nor answer anything the document does not describe
(status code, content type, headers, body schema). Part of the suite, so CI runs it.

Every other check runs too, but for "a body the schema allows is accepted": the product form's
rules go beyond what a JSON Schema says (a name starts with a letter; the owner and the lead
are different people; a quota is one of the platform's options), and a body that breaks one
gets a 422 with the field's message, as the form would.

The operations are driven with Hypothesis directly (``operation.as_strategy()``): schemathesis'
pytest fixture loader does not run under this project's pytest."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from registry.api import tokens
from registry.api.models import Access, Scope
from registry.extensions import db
from tests.requests.test_day_two import live_product


def operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("who", ["team", "staff"])
def test_the_api_keeps_its_document_and_never_fails(app, owner, admin, who):
    product = live_product(owner, admin)
    if who == "team":
        _, secret = tokens.create("fuzz", Scope.PRODUCT, Access.REQUEST, owner, product=product)
    else:
        _, secret = tokens.create("fuzz", Scope.ALL, Access.DECIDE, admin)
    db.session.commit()
    app.config["API_CALLS_PER_MINUTE"] = 0
    headers = {"Authorization": f"Bearer {secret}"}
    found = operations(app)
    assert len(found) >= 10
    for operation in found:

        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def call(case):
            case.call_and_validate(
                headers=headers, excluded_checks=[schemathesis.checks.positive_data_acceptance]
            )

        call()
