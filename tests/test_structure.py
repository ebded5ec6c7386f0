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


def test_the_reference_provisioner_lives_outside_and_needs_only_the_contract_and_nats():
    # A separate system beside the registry: of the registry it imports the message contract and
    # the NATS helper, nothing with a database, an outbox or the lifecycle; and the registry app
    # does not register it (its entry point is its own).
    outside = ROOT.parent / "provisioner"
    imported = set()
    for path in outside.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module or "")
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    assert {m for m in imported if m.split(".")[0] == "registry"} == {"registry"}, imported
    registry_names = {
        alias.name
        for path in outside.glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "registry"
        for alias in node.names
    }
    assert registry_names == {"contract", "natsutil"}
    assert not (ROOT / "provisioner").exists()


def test_the_lifecycle_imports_none_of_the_features_that_react_to_it():
    tree = ast.parse(inspect.getsource(lifecycle))
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [m for m in imported if "provisioning" in m or "notifications" in m], imported
