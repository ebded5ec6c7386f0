"""What an edit changes (a diff of two product records, field by field), and the automatic-approval
rules that say which changes go straight to the provisioner and which wait for a super admin.

The rules are one table, :data:`RULES`, documented in docs/day-two.md: change it here and there.
"""

from collections.abc import Callable
from dataclasses import dataclass

from ..products.models import ContactRole
from ..reference import quotas
from ..reference.models import ENVIRONMENTS, QUOTA_KINDS

CONTACT_ROLES = {role.value: role.label for role in ContactRole}
QUOTA_LABELS = {"cpu": "CPU", "memory": "memory", "storage": "storage", "snapshot": "snapshots"}
DETAILS = {"name": "Product name", "description": "Description", "ministry": "Ministry"}


@dataclass(frozen=True)
class Change:
    """One field that differs: ``kind`` is detail, contact or quota; ``direction`` +1 or -1 for
    a quota that goes up or down."""

    kind: str
    field: str
    label: str
    before: str
    after: str
    direction: int = 0
    # A quota increase that measured usage supports: what was measured, in words.
    measured: str = ""

    @property
    def sentence(self) -> str:
        if self.kind == "quota":
            verb = "goes up" if self.direction > 0 else "goes down"
            said = f"{self.label} {verb} from {self.before} to {self.after}"
            return f"{said} ({self.measured})" if self.measured else said
        if self.kind in ("contact", "ends"):
            return f"{self.label} changes from {self.before} to {self.after}"
        return f"{self.label} changes"


def _contact(value: dict | None) -> str:
    if not value:
        return "nobody"
    return f"{value['first_name']} {value['last_name']} <{value['email']}>"


def diff(before: dict, after: dict) -> list[Change]:
    """The fields of ``after`` that differ from ``before`` (both in ``ProductData.as_dict``
    shape), in the order the form shows them."""
    changes = [
        Change("detail", key, label, before[key], after[key])
        for key, label in DETAILS.items()
        if before[key] != after[key]
    ]
    for role, label in CONTACT_ROLES.items():
        old, new = before["contacts"].get(role), after["contacts"].get(role)
        if (old or None) != (new or None):
            changes.append(
                Change("contact", f"contacts.{role}", label, _contact(old), _contact(new))
            )
    for env in ENVIRONMENTS:
        for kind in QUOTA_KINDS:
            old, new = before["namespaces"][env][kind], after["namespaces"][env][kind]
            if old != new:
                changes.append(
                    Change(
                        "quota",
                        f"namespaces.{env}.{kind}",
                        f"{env} {QUOTA_LABELS[kind]}",
                        quotas.describe(old),
                        quotas.describe(new),
                        1 if quotas.size(new) > quotas.size(old) else -1,
                    )
                )
    return changes


@dataclass(frozen=True)
class Row:
    """One field of an edit, side by side: live when asked, asked for, and decided (granted)."""

    label: str
    live: str
    asked: str
    decided: str


def compare(original: dict, requested: dict, decided: dict | None) -> list[Row]:
    """Every field that the request or the decision changes, with its three values."""
    if original is None:
        return []  # not an edit: nothing was live to compare with
    asked = {c.field: c for c in diff(original, requested)}
    granted = {c.field: c for c in diff(original, decided or requested)}
    rows = []
    for field in [*asked, *(f for f in granted if f not in asked)]:
        change = asked.get(field) or granted[field]
        a, g = asked.get(field), granted.get(field)
        rows.append(
            Row(
                change.label,
                change.before,
                a.after if a else change.before,
                g.after if g else change.before,
            )
        )
    return rows


def contacts_changed(before: dict | None, after: dict) -> bool:
    """The provisioning message's ``isContactChanged``: who gets admin in the namespaces."""
    if before is None:
        return False
    emails = [
        {role: (c or {}).get("email") for role, c in data["contacts"].items()}
        for data in (before, after)
    ]
    return emails[0] != emails[1]


@dataclass(frozen=True)
class Rule:
    """One line of the automatic-approval table."""

    name: str
    matches: Callable[[Change], bool]
    needs_review: bool
    why: str


RULES: tuple[Rule, ...] = (
    Rule(
        "quota-increase-used",
        lambda c: c.kind == "quota" and c.direction > 0 and bool(c.measured),
        False,
        "An increase of what is used (CPU or memory at 35 % or more of the request on average "
        "over two weeks, storage above 80 % of its claims), by at most half or within the small "
        "sizes, goes through; the figures are kept on the request.",
    ),
    Rule(
        "quota-increase",
        lambda c: c.kind == "quota" and c.direction > 0,
        True,
        "More CPU, memory, storage or snapshots cost the platform capacity: a super admin reviews.",
    ),
    Rule(
        "temporary-longer",
        lambda c: c.kind == "ends" and c.direction > 0,
        True,
        "Keeping a temporary increase longer, or for good, holds capacity: a super admin reviews.",
    ),
    Rule(
        "temporary-sooner",
        lambda c: c.kind == "ends" and c.direction < 0,
        False,
        "Ending a temporary increase sooner gives capacity back: no review.",
    ),
    Rule(
        "quota-decrease",
        lambda c: c.kind == "quota" and c.direction < 0,
        False,
        "Giving capacity back needs no review.",
    ),
    Rule(
        "contacts",
        lambda c: c.kind == "contact",
        False,
        "The team names its own owner and technical leads; the old and new contacts are told.",
    ),
    Rule(
        "details",
        lambda c: c.kind == "detail",
        False,
        "Name, description and ministry are the team's to keep current.",
    ),
)


@dataclass(frozen=True)
class Verdict:
    """Which path a change takes, and why, in words shown before and after submit."""

    needs_review: bool
    reasons: tuple[str, ...]
    # What measured usage said of the quota increases (usage.rules.Evidence.as_dict()), if any.
    evidence: dict | None = None
    # The change keeps a temporary increase longer, or for good.
    holds_longer: bool = False

    @property
    def increases(self) -> bool:
        return bool(self.evidence and self.evidence["checks"])

    @property
    def needs_justification(self) -> bool:
        """A quota increase, or a longer hold of one, that waits for review: the team must say
        why."""
        return self.needs_review and (self.increases or self.holds_longer)

    @property
    def summary(self) -> str:
        if self.needs_review:
            head = "Needs review"
        elif self.evidence and self.evidence["passed"]:
            head = "Approved automatically, measured usage supports the increase"
        else:
            head = "Approved automatically, no quota goes up"
        return f"{head}: {'; '.join(self.reasons)}."


def rule_for(change: Change) -> Rule:
    return next(rule for rule in RULES if rule.matches(change))


def assess(changes: list[Change], automatic: bool = True, evidence: dict | None = None) -> Verdict:
    """Apply :data:`RULES` to an edit's changes. ``automatic=False`` (the setting
    ``AUTO_APPROVE_EDITS``) sends every change to review. ``evidence``: what measured usage said
    of the quota increases (their changes carry ``measured`` where it supports them)."""
    longer = any(c.kind == "ends" and c.direction > 0 for c in changes)
    if not automatic:
        return Verdict(
            True,
            ("automatic approval is turned off; a super admin reviews every change",),
            evidence,
            longer,
        )
    reviewed = [c for c in changes if rule_for(c).needs_review]
    if reviewed:
        return Verdict(True, tuple(c.sentence for c in reviewed), evidence, longer)
    return Verdict(False, tuple(c.sentence for c in changes), evidence)
