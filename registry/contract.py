"""The message contracts with the provisioner (docs/domain.md). A real provisioner depends on them:
change a key here and a pipeline somewhere breaks."""

from dataclasses import dataclass
from datetime import UTC, datetime

from .inputs import DIGITS, MAX_ID, BadJSON, parse_json

SUBJECT_PREFIX = "registry_project_provisioning_"
STATUS_SUBJECT = "registry_project_provisioning_status"

# The steps the provisioner reports, in order; "failed" may come at any point instead.
STEPS = (
    "workflow_started",
    "acs_account_created",
    "manifests_committed",
    "pull_request_merged",
    "namespaces_created",
    "vault_accounts_created",
    "artifactory_account_created",
    "provisioned",
)
FAILED = "failed"
STEP_LABELS = {
    "workflow_started": "Workflow started",
    "acs_account_created": "ACS account created",
    "manifests_committed": "Manifests committed to GitOps",
    "pull_request_merged": "Pull request merged",
    "namespaces_created": "Namespaces created",
    "vault_accounts_created": "Vault accounts created",
    "artifactory_account_created": "Artifactory account created",
    "provisioned": "Provisioned",
}
ENVIRONMENTS = ("tools", "dev", "test", "prod")
CONTACT_ROLES = {"owner": "owner", "primary_lead": "lead", "secondary_lead": "lead"}


def provisioning_subject(cluster: str) -> str:
    return f"{SUBJECT_PREFIX}{cluster}"


def workflow_name(cluster: str, licence_plate: str, request_id: int) -> str:
    return f"{cluster}-{licence_plate}-{request_id}"


def clean_text(value: str) -> str:
    """The provisioner's templates cannot take double quotes or backslashes."""
    return value.replace('"', "").replace("\\", "").strip()


def provisioning_message(
    *,
    action: str,
    product_id: int,
    licence_plate: str,
    request_id: int,
    cluster_name: str,
    cluster_id: int,
    data: dict,
    alliance: str,
    quota_numbers: dict[str, dict],
    contact_changed: bool = False,
) -> dict:
    """The JSON body of one provisioning message, from the product data a request decided."""
    namespaces = []
    for env in ENVIRONMENTS:
        chosen = data["namespaces"][env]
        namespaces.append(
            {
                "name": f"{licence_plate}-{env}",
                "quota": {kind: chosen[kind] for kind in ("cpu", "memory", "storage", "snapshot")},
                "quotas": {
                    kind: dict(quota_numbers[chosen[kind]])
                    for kind in ("cpu", "memory", "storage", "snapshot")
                },
            }
        )
    contacts = [
        {
            "email": contact["email"],
            "role": CONTACT_ROLES[role],
            "first_name": contact["first_name"],
            "last_name": contact["last_name"],
        }
        for role, contact in data["contacts"].items()
        if contact
    ]
    return {
        "action": action,
        "profile_id": product_id,
        "licencePlate": licence_plate,
        "cluster_id": cluster_id,
        "cluster_name": cluster_name,
        "workflow": workflow_name(cluster_name, licence_plate, request_id),
        "display_name": clean_text(data["name"]),
        "description": clean_text(data["description"]),
        "ministry_id": data["ministry"],
        "merge_type": "auto",
        "alliance": alliance,
        "isContactChanged": contact_changed,
        "namespaces": namespaces,
        "contacts": contacts,
    }


def parse_workflow(workflow: str) -> tuple[str, str, int] | None:
    """``<cluster>-<plate>-<requestId>`` as (cluster, plate, request id), or None when the name
    is not one: the id is ASCII digits only (``str.isdigit`` also takes "²", which int()
    refuses), at most ten of them, and fits the requests table's integer column, as every id
    in a path does (``inputs.MAX_ID``)."""
    parts = workflow.rsplit("-", 2)
    if len(parts) != 3 or not DIGITS.fullmatch(parts[2]) or int(parts[2]) > MAX_ID:
        return None
    return parts[0], parts[1], int(parts[2])


class InvalidReport(ValueError):
    """A status report that breaks the contract; the message says how, in a sentence of its
    own: it never repeats what was sent (a caller could make it as long as a body may be)."""


# The longest text a field of a report or of the HTTP callback may hold; the free-text message
# is cut at MESSAGE_MAX instead. A plate is 6 characters, a workflow some 30.
FIELD_MAX = 200
MESSAGE_MAX = 2000


def _text_field(body: dict, key: str) -> str:
    """``body[key]``: a non-empty string of at most FIELD_MAX characters, none a control one."""
    if key not in body:
        raise InvalidReport(f"missing field: {key}")
    value = body[key]
    if not isinstance(value, str) or not value.strip():
        raise InvalidReport(f"field {key} must be a non-empty string")
    if len(value) > FIELD_MAX:
        raise InvalidReport(f"field {key} is longer than {FIELD_MAX} characters")
    if any(ord(ch) < 32 for ch in value):
        raise InvalidReport(f"field {key} contains control characters")
    return value


@dataclass(frozen=True)
class StatusReport:
    licence_plate: str
    cluster: str
    status: str
    workflow: str | None = None
    message: str = ""
    occurred_at: datetime | None = None

    @property
    def request_id(self) -> int | None:
        """The request named by the workflow ``<cluster>-<plate>-<requestId>``."""
        if self.workflow is None:
            return None
        return int(self.workflow.rsplit("-", 2)[2])


def parse_report(raw: bytes | str) -> StatusReport:
    """Read one report from ``registry_project_provisioning_status``, or raise InvalidReport."""
    try:
        body = parse_json(raw)
    except BadJSON as exc:
        raise InvalidReport(str(exc)) from exc
    if not isinstance(body, dict):
        raise InvalidReport("the report must be a JSON object")
    plate, cluster, workflow, status = (
        _text_field(body, key) for key in ("prefix", "clusterName", "workflow", "status")
    )
    if status not in STEPS and status != FAILED:
        raise InvalidReport("unknown status: not a step of the contract, nor failed")
    parts = parse_workflow(workflow)
    if parts is None:
        raise InvalidReport("the workflow is not <cluster>-<licencePlate>-<requestId>")
    if parts[0] != cluster or parts[1] != plate:
        raise InvalidReport("the workflow does not match the prefix and the clusterName")
    message = body.get("message") or ""
    if not isinstance(message, str):
        raise InvalidReport("field message must be a string")
    occurred_at = None
    if body.get("occurred_at"):
        try:
            when = body["occurred_at"]
            if not isinstance(when, str) or len(when) > FIELD_MAX:
                raise ValueError(when)
            occurred_at = datetime.fromisoformat(when.replace("Z", "+00:00"))
            if occurred_at.tzinfo is not None:
                # OverflowError: a valid local time can fall outside years 1-9999 in UTC.
                occurred_at = occurred_at.astimezone(UTC).replace(tzinfo=None)
        except (ValueError, OverflowError) as exc:
            raise InvalidReport("occurred_at is not an ISO 8601 time in years 1-9999") from exc
    # Free text from another system: no NUL or other control characters into our tables.
    message = "".join(ch for ch in message if ch in "\n\t" or ord(ch) >= 32)[:MESSAGE_MAX]
    return StatusReport(plate, cluster, status, workflow, message, occurred_at)


def parse_callback(body) -> tuple[str, str]:
    """The HTTP callback's body ``{"prefix": <plate>, "clusterName": <cluster>}`` as (plate,
    cluster), trimmed; or :class:`InvalidReport`."""
    if not isinstance(body, dict):
        raise InvalidReport("the body must be a JSON object")
    return _text_field(body, "prefix").strip(), _text_field(body, "clusterName").strip()


def report_body(
    licence_plate: str, cluster: str, request_id: int, status: str, message: str = ""
) -> dict:
    """A status report as the provisioner sends it (for the hand-played provisioner and tests)."""
    return {
        "prefix": licence_plate,
        "clusterName": cluster,
        "workflow": workflow_name(cluster, licence_plate, request_id),
        "status": status,
        "message": message,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def validate_provisioning_message(message) -> list[str]:
    """What is wrong with a provisioning message, by the contract (the provisioner's check)."""
    if not isinstance(message, dict):
        return ["the message must be a JSON object"]
    problems = []
    text_fields = (
        "action",
        "licencePlate",
        "cluster_name",
        "workflow",
        "display_name",
        "ministry_id",
        "merge_type",
        "alliance",
    )
    for key in text_fields:
        if not isinstance(message.get(key), str) or not message.get(key):
            problems.append(f"missing field: {key}")
    if not isinstance(message.get("description"), str):
        problems.append("missing field: description")
    if problems:
        return problems
    if message["action"] not in ("create", "edit", "delete"):
        problems.append("unknown action: not create, edit or delete")
    if not isinstance(message.get("profile_id"), int):
        problems.append("profile_id must be a number")
    plate, cluster = message["licencePlate"], message["cluster_name"]
    workflow = message["workflow"].rsplit("-", 2)
    if len(workflow) != 3 or workflow[:2] != [cluster, plate] or not workflow[2].isdigit():
        problems.append("the workflow is not <cluster_name>-<licencePlate>-<requestId>")
    namespaces = message.get("namespaces")
    if not isinstance(namespaces, list) or [
        n.get("name") for n in namespaces if isinstance(n, dict)
    ] != [f"{plate}-{env}" for env in ENVIRONMENTS]:
        problems.append("namespaces must be the four of the plate: tools, dev, test, prod")
    else:
        for ns in namespaces:
            quota, quotas = ns.get("quota"), ns.get("quotas")
            for kind in ("cpu", "memory", "storage", "snapshot"):
                if not (
                    isinstance(quota, dict)
                    and isinstance(quota.get(kind), str)
                    and isinstance(quotas, dict)
                    and isinstance(quotas.get(kind), dict)
                ):
                    problems.append(f"{ns['name']}: no {kind} quota")
    contacts = message.get("contacts")
    if not isinstance(contacts, list) or not all(
        isinstance(c, dict) and c.get("email") and c.get("role") in ("owner", "lead")
        for c in contacts
    ):
        problems.append("contacts must be a list of {email, role: owner|lead}")
    elif [c["role"] for c in contacts].count("owner") != 1 or "lead" not in [
        c["role"] for c in contacts
    ]:
        problems.append("contacts need one owner and at least one lead")
    return problems
