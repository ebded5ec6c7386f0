"""Render the GitOps manifests of one provisioning message from the templates beside this file."""

import shutil
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).parent / "templates"
PER_NAMESPACE = ("namespace.yaml", "resourcequotas.yaml", "rolebinding.yaml", "networkpolicy.yaml")
PER_PRODUCT = ("vault.yaml", "artifactory.yaml")


def gib(value) -> str:
    """GiB as Kubernetes writes quantities: 4 -> 4Gi, 0.5 -> 512Mi."""
    value = float(value)
    return f"{value:g}Gi" if value.is_integer() else f"{round(value * 1024)}Mi"


def _environment() -> Environment:
    # Values go through tojson: a JSON string is a YAML string, so no name or description can
    # break out of its field.
    env = Environment(  # noqa: S701 - YAML, not HTML
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["gib"] = gib
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "ensure_ascii": False}
    return env


ENV = _environment()


def context(message: dict) -> dict:
    contacts = message["contacts"]
    owner = next(c for c in contacts if c["role"] == "owner")
    leads = [c for c in contacts if c["role"] == "lead"]
    namespaces = [
        {**ns, "environment": ns["name"].rsplit("-", 1)[1]} for ns in message["namespaces"]
    ]
    return {
        "plate": message["licencePlate"],
        "cluster": message["cluster_name"],
        "profile_id": message["profile_id"],
        "display_name": message["display_name"],
        "description": message["description"],
        "ministry": message["ministry_id"],
        "owner": owner,
        "leads": leads,
        "contacts": contacts,
        "namespaces": namespaces,
    }


def product_folder(repo_path: Path, message: dict) -> Path:
    return repo_path / message["cluster_name"] / message["licencePlate"]


def acs_record(repo_path: Path, message: dict) -> Path:
    return repo_path / "acs" / message["cluster_name"] / f"{message['licencePlate']}.yaml"


def write_acs_record(repo_path: Path, message: dict) -> Path:
    path = acs_record(repo_path, message)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(ENV.get_template("acs-account.yaml").render(context(message)))
    return path


def write_product(repo_path: Path, message: dict) -> list[Path]:
    """Write every manifest of the product afresh, so that what the message no longer asks for
    disappears from git too."""
    folder = product_folder(repo_path, message)
    if folder.exists():
        shutil.rmtree(folder)
    ctx = context(message)
    written = []
    for ns in ctx["namespaces"]:
        for name in PER_NAMESPACE:
            path = folder / ns["name"] / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(ENV.get_template(name).render(ctx, ns=ns))
            written.append(path)
    for name in PER_PRODUCT:
        path = folder / name
        path.write_text(ENV.get_template(name).render(ctx))
        written.append(path)
    return written


def remove_product(repo_path: Path, message: dict) -> None:
    """A delete: the namespaces go when Argo CD sees their manifests gone."""
    shutil.rmtree(product_folder(repo_path, message), ignore_errors=True)
    acs_record(repo_path, message).unlink(missing_ok=True)
