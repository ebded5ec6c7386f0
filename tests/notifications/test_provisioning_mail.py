"""The emails of provisioning, through a real SMTP conversation: "provisioned" tells the team
where its namespaces are and who administers them; "failed" tells the team and the reviewers
why; "approved" is sent once, however often a request is re-sent.

The provisioner's reports are applied as the bridge applies them (no NATS needed here); mail
is delivered by ``sender.deliver_due()`` as the outbox sender does after a commit.
"""

import pytest
from markupsafe import escape

from registry import contract
from registry.extensions import db
from registry.notifications import sender
from registry.products.services import ContactData
from registry.provisioning import reports as status_reports
from registry.requests import services
from registry.requests.models import RequestStatus
from tests import builders
from tests.builders import report
from tests.notifications.test_mail import (
    PUBLIC_URL,
    REVIEWERS,
    check_delivered,
    html_part,
    outbox,
    received,
    row_for,
    team_of,
    text_part,
    to_addresses,
)

PREFIX = "[Product Registry] "
SILVER_CONSOLE = "https://console.apps.silver.devops.gov.bc.ca"
GOLD_CONSOLE = "https://console.apps.gold.devops.gov.bc.ca"
GOLDDR_CONSOLE = "https://console.apps.golddr.devops.gov.bc.ca"
ADMINS = {"admin@example.com", "admin2@example.com"}  # the admin and other_admin fixtures


def provision(req, cluster: str):
    """The provisioner goes through every step on ``cluster``."""
    for step in contract.STEPS:
        report(req, step, f"{step} on {cluster}", cluster=cluster)


def approved(owner, admin, **overrides):
    """A request submitted and approved, its "received", "awaiting review" and "approved"
    emails already delivered."""
    req = builders.submit(
        owner,
        # Short enough that no subject is folded (check_delivered compares it whole), and with
        # characters the HTML part must escape.
        name="Fish <&> Co",
        secondary_lead=ContactData("Sam", "Second", "sam.second@example.com"),
        **overrides,
    )
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    assert sender.deliver_due() == 3
    return req


def sent(smtp_sink, subject: str):
    # A subject longer than a header line is folded before its first word; unfolded, it keeps
    # the leading space (as test_mail notes of the Message-ID).
    return [m for m in received(smtp_sink) if m["Subject"].strip() == subject]


def subject(kind: str, product) -> str:
    label = {
        "approved": "Approved",
        "provisioned": "Your namespaces are ready",
        "failed": "Provisioning failed",
    }[kind]
    return f"{PREFIX}{label}: {product.name} ({product.licence_plate})"


# --- provisioned ---------------------------------------------------------------------------------


def test_provisioned_tells_the_team_only_where_its_namespaces_are_and_who_administers_them(
    mail_app, smtp_sink, owner, admin, other_admin
):
    req = approved(owner, admin)
    product, plate = req.product, req.product.licence_plate

    # Steps on the way send nothing; only the end does.
    for step in contract.STEPS[:-1]:
        report(req, step)
    assert sender.deliver_due() == 0
    report(req, "provisioned")
    assert sender.deliver_due() == 1

    [message] = sent(smtp_sink, subject("provisioned", product))
    check_delivered(message, row_for("provisioned", req), req)
    team = team_of(req, owner)
    assert team == {c.email for c in product.contacts} | {"owner@example.com"}
    assert len(team) == 4  # PO, two TLs, the requester
    assert to_addresses(message) == team
    assert sorted(message.envelope_to) == sorted(team)
    assert not to_addresses(message) & (ADMINS | {REVIEWERS})

    text, page = text_part(message), html_part(message)
    for env in ("tools", "dev", "test", "prod"):
        assert f"{plate}-{env}" in text
        assert f"<code>{plate}-{env}</code>" in page
    assert SILVER_CONSOLE in text
    assert f'href="{SILVER_CONSOLE}"' in page
    assert "console.apps.gold" not in text + page
    assert "Who has admin access" in text
    assert "Who has admin access" in page
    for contact in product.contacts:
        assert f"{contact.full_name} <{contact.email}> ({contact.role_label.lower()})" in text
        assert f"{contact.full_name} &lt;{contact.email}&gt;" in page
    # The product's name is the team's text: escaped in the HTML part.
    assert str(escape(product.name)) in page
    assert product.name not in page
    assert f"{PUBLIC_URL}/requests/{req.id}" in text


def test_a_gold_product_is_announced_once_both_clusters_are_ready_with_both_consoles(
    mail_app, smtp_sink, owner, admin
):
    req = approved(owner, admin, cluster_name="gold")
    product = req.product

    provision(req, "gold")
    db.session.expire_all()
    assert req.status == RequestStatus.PARTIALLY_PROVISIONED
    assert sender.deliver_due() == 0  # half a product is not ready

    provision(req, "golddr")
    assert sender.deliver_due() == 1

    [message] = sent(smtp_sink, subject("provisioned", product))
    assert to_addresses(message) == team_of(req, owner)
    text, page = text_part(message), html_part(message)
    for console in (GOLD_CONSOLE, GOLDDR_CONSOLE):
        assert console in text
        assert f'href="{console}"' in page
    assert SILVER_CONSOLE not in text + page
    for env in ("tools", "dev", "test", "prod"):
        assert f"{product.licence_plate}-{env}" in text


def test_a_repeated_provisioned_report_sends_no_second_email(mail_app, smtp_sink, owner, admin):
    req = approved(owner, admin)
    provision(req, "silver")
    assert sender.deliver_due() == 1

    outcome = report(req, "provisioned")

    assert not outcome.applied
    assert sender.deliver_due() == 0
    assert len(outbox(kind="provisioned", request_id=req.id)) == 1
    assert len(sent(smtp_sink, subject("provisioned", req.product))) == 1


# --- failed --------------------------------------------------------------------------------------


def test_failed_tells_the_team_and_the_reviewers_why(
    mail_app, smtp_sink, owner, admin, other_admin
):
    reason = 'Vault refused the policy <kv-"prod"> & gave up.'
    req = approved(owner, admin)
    report(req, "workflow_started")
    report(req, "acs_account_created")

    report(req, "failed", reason)
    assert sender.deliver_due() == 1

    [message] = sent(smtp_sink, subject("failed", req.product))
    check_delivered(message, row_for("failed", req), req)
    team = team_of(req, owner)
    assert to_addresses(message) == team | ADMINS | {REVIEWERS}
    assert sorted(message.envelope_to) == sorted(team | ADMINS | {REVIEWERS})
    text, page = text_part(message), html_part(message)
    assert reason in text
    assert str(escape(reason)) in page
    assert reason not in page  # escaped, not markup
    assert "on silver" in text
    assert "after the step" in text
    assert "ACS account created" in text  # the last step done, in words
    assert sender.deliver_due() == 0


def test_a_failure_on_golddr_names_the_cluster(mail_app, smtp_sink, owner, admin):
    req = approved(owner, admin, cluster_name="gold")
    provision(req, "gold")
    report(req, "failed", "No capacity in Calgary.", cluster="golddr")
    assert sender.deliver_due() == 1  # no "provisioned" for the half that is done

    [message] = sent(smtp_sink, subject("failed", req.product))
    assert "on golddr" in text_part(message)
    assert "No capacity in Calgary." in text_part(message)
    assert sent(smtp_sink, subject("provisioned", req.product)) == []


# --- approved, once -------------------------------------------------------------------------------


@pytest.mark.parametrize("stuck_at", ["failed", "approved", "provisioning"])
def test_approval_is_announced_once_and_a_resend_does_not_announce_it_again(
    mail_app, smtp_sink, owner, admin, stuck_at
):
    req = builders.submit(owner)
    assert sender.deliver_due() == 2  # received, awaiting review
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    assert sender.deliver_due() == 1
    [approval] = sent(smtp_sink, subject("approved", req.product))
    assert to_addresses(approval) == team_of(req, owner)

    if stuck_at in ("provisioning", "failed"):
        report(req, "workflow_started")
    if stuck_at == "failed":
        report(req, "failed", "The pipeline timed out.")
        assert sender.deliver_due() == 1
    db.session.expire_all()
    assert req.status == stuck_at

    status_reports.resend(req.id, admin)
    db.session.commit()
    db.session.expire_all()
    assert (req.status, req.attempt) == (RequestStatus.APPROVED, 2)

    assert sender.deliver_due() == 0
    assert len(outbox(kind="approved", request_id=req.id)) == 1
    assert len(sent(smtp_sink, subject("approved", req.product))) == 1

    # The second attempt gets through: the team hears of it once, as "provisioned".
    provision(req, "silver")
    assert sender.deliver_due() == 1
    assert len(sent(smtp_sink, subject("provisioned", req.product))) == 1
    assert len(sent(smtp_sink, subject("approved", req.product))) == 1
