"""The shape of the code: who may import whom."""

import ast
import inspect
from pathlib import Path

import registry
from registry.requests import lifecycle

ROOT = Path(registry.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """The registry modules a file imports, as absolute names."""
    package = ".".join(["registry", *path.relative_to(ROOT).with_suffix("").parts[:-1]])
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


# --- layering: which package may import which --------------------------------------------------

# Modules every feature may use; they import only each other.
BASE = {
    "access", "availability", "config", "contract", "errors", "extensions", "htmx", "inputs",
    "logs", "natsutil", "outbox", "pagination", "search", "security", "timeutil",
}  # fmt: skip
# Each feature and the features it may import (besides the base). Read upwards: nothing may
# import a feature that imports it, directly or through others.
FEATURES = {
    "reference": set(),
    "audit": set(),
    "auth": {"audit"},
    "products": {"auth", "reference"},
    "usage": {"products", "reference"},
    "requests": {"audit", "auth", "products", "reference", "usage"},
    "metrics": {"requests"},
    "notifications": {"audit", "auth", "metrics", "reference"},
    "provisioning": {"audit", "auth", "metrics", "products", "reference", "requests"},
    "operations": {"auth", "notifications", "products", "requests"},
    "filters": {"reference"},
    "health": {"metrics", "wiring"},
    "capacity": {"audit", "auth", "notifications", "products", "reference", "requests", "usage"},
    "api": {"audit", "auth", "products", "reference", "requests"},
    "webhooks": {"audit", "auth", "products"},
}
# What puts it all together, and may import anything: the app factory, the one module that
# wires reactions and threads, the commands, the list of every model.
TOP = {"__init__", "wiring", "cli", "models"}


def package_imports() -> dict[str, dict[str, set[str]]]:
    """Top-level package -> the top-level packages it imports -> the files that do, counting
    imports inside functions too."""
    found: dict[str, dict[str, set[str]]] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] == "migrations":
            continue
        package = parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")
        for module in imported_modules(path):
            target = module.split(".")[1] if module.count(".") else None
            if (
                target
                and target != package
                and ((ROOT / target).is_dir() or (ROOT / f"{target}.py").exists())
            ):
                found.setdefault(package, {}).setdefault(target, set()).add(str(path.name))
    return found


def test_every_package_has_a_place_in_the_layers():
    packages = {
        p.name if p.is_dir() else p.stem
        for p in ROOT.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"
    }
    assert packages - {"migrations"} == BASE | set(FEATURES) | TOP


def test_each_package_imports_only_what_its_layer_allows():
    wrong = {}
    for package, targets in package_imports().items():
        if package in TOP:
            continue
        allowed = BASE if package in BASE else BASE | FEATURES[package]
        for target, files in targets.items():
            if target not in allowed:
                wrong[f"{package} -> {target}"] = sorted(files)
    assert wrong == {}


def test_the_layers_have_no_cycle():
    def reaches(start: str, seen: set[str]) -> set[str]:
        for target in FEATURES.get(start, set()):
            if target not in seen:
                seen.add(target)
                reaches(target, seen)
        return seen

    assert [f for f in FEATURES if f in reaches(f, set())] == []


def test_an_import_inside_a_function_says_why():
    silent = []
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts or path == ROOT / "__init__.py":
            continue  # the app factory imports the features as it builds the app (said there)
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    line, before = lines[inner.lineno - 1], lines[inner.lineno - 2]
                    if "#" not in line and not before.strip().startswith("#"):
                        silent.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert silent == []


def test_only_the_lifecycle_writes_a_timeline_entry_or_a_request_status():
    writers = []
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts or path == ROOT / "requests" / "lifecycle.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            made = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "RequestEvent"
            assigned = isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Attribute)
                and t.attr == "status"
                and getattr(t.value, "id", "") in ("request", "req", "product")
                for t in node.targets
            )
            if made or assigned:
                writers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert writers == []
