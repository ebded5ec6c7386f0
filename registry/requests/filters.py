"""Template filters of the request workflow: what a request asks for, an edit's changes, a new
product's quotas above the defaults."""

from ..reference import quotas
from ..reference import services as reference
from . import changes
from .changes import QUOTA_LABELS


def above_defaults(data: dict) -> list[str]:
    """A new product's quotas that are not the defaults, in words: 'prod CPU 2 cores, limit 4'
    (what a reviewer would otherwise have to open the whole request to see)."""
    defaults = reference.kept_default_quotas()
    return [
        f"{env} {QUOTA_LABELS.get(kind, kind)} {quotas.describe(name)}"
        for env, kinds in (data or {}).get("namespaces", {}).items()
        for kind, name in kinds.items()
        if defaults.get(kind) not in (None, name)
    ]


def change_rows(request) -> list:
    """An edit's fields side by side: live when asked, asked for, granted."""
    return changes.compare(request.original_data, request.requested_data, request.decision_data)


def diff(original: dict, requested: dict) -> list:
    """An edit's changes (field, from, to)."""
    return changes.diff(original, requested)


def asked_for(request) -> str:
    """What a request asks for, to end a sentence: 'a change to River Permits'."""
    name = request.product.name
    return {
        "create": f"the new product {name}",
        "edit": f"a change to {name}",
        "delete": f"the deletion of {name}",
    }[request.type]


def register(app) -> None:
    app.add_template_filter(above_defaults, "above_defaults")
    app.add_template_filter(change_rows, "change_rows")
    app.add_template_filter(diff, "diff")
    app.add_template_filter(asked_for, "asked_for")
