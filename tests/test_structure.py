"""The shape of the code: who may import whom."""

import ast
import inspect
from pathlib import Path

import registry
from registry.requests import lifecycle

ROOT = Path(registry.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """The registry modules a file imports, as absolute names."""
    package = "registry." + ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = f"{base}.{node.module}" if node.module else base
            names = [f"{module}.{alias.name}" for alias in node.names]
            found.update([module, *names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("registry"):
            found.add(node.module)
    return found


def test_the_reference_provisioner_needs_only_the_contract_and_the_nats_helper():
    # The contract, the NATS helper (and what it uses to say a server is away), the JSON guard the
    # contract parses with, logging, and the metrics port (prometheus-client, no database):
    # nothing with a database, an outbox or the lifecycle.
    allowed = {"registry", "registry.contract", "registry.natsutil", "registry.availability",
               "registry.logs", "registry.inputs", "registry.metrics",
               "registry.metrics.server"}  # fmt: skip
    outside = {
        (path.name, module)
        for path in (ROOT / "provisioner").glob("*.py")
        for module in imported_modules(path)
        if not module.startswith("registry.provisioner") and module not in allowed
    }
    assert outside == set()


def test_the_lifecycle_imports_none_of_the_features_that_react_to_it():
    tree = ast.parse(inspect.getsource(lifecycle))
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [m for m in imported if "provisioning" in m or "notifications" in m], imported
