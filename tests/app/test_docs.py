"""The docs do not drift: what README.md, SECURITY.md, docs/*.md and the runbook name exists.

Names are read by these rules, and by no others (a name written otherwise is not checked):

- **Code** is inline code (`...`) and the lines of fenced code blocks (```). Paths, make targets,
  commands and URL paths are read from code only; settings and links from the whole text.
- **A path** is a word of code that contains a ``/`` and starts with a folder git tracks at the top
  of the repository (``registry/``, ``docs/``, ``tests/``, ``.ci/``...): it must exist. ``<x>``
  stands for any one name, and ``*`` is a glob, so ``docs/screenshots/*.png`` must match a file.
  A path that starts anywhere else (``instance/``, ``/etc/``, ``<cluster>/``) is not checked.
- **A make target** is the word after ``make`` in code: a target of the Makefile.
- **A command** is the word after ``flask`` (or ``.../flask``) and an optional ``--app registry``
  in code: a command of the app's CLI (what ``flask --app registry --help`` lists, plugins
  included); when it is a group, the next word, if it is a lower-case name, is one of its commands.
- **A setting** is ``REGISTRY_<NAME>`` anywhere: ``NAME`` is an attribute of ``Defaults`` in
  registry/config.py (or of the reference provisioner's ``provisioner/settings.py``), or one of
  ``NOT_SETTINGS`` (variables the tests read), which must still
  appear in the file named for it.
- **A URL path** is inline code that is a path starting with ``/`` (after an optional HTTP method,
  ``PUT /api/...``), or any URL of code on the documented hosts (``https://registry.example/...``,
  ``http://127.0.0.1:5000/...``): a route of the app, for that method when one is named. ``<x>``
  stands for a value. Paths of the file system (first folder in ``FILE_SYSTEM``) are not URLs.
- **A test** is inline code ``tests/test_x.py::test_name`` or ``test_x.py::test_name``, or
  ``::test_name`` for one more test of the file named last in the same document: a function at
  the top of that test file. A bare ``test_x.py`` must be a file in tests/.
- **A link** is a markdown link or image, ``[text](target)``, or an HTML ``src``/``href``, outside
  code, whose target has no scheme: the file must exist (relative to the document), and its
  ``#anchor``, in a markdown file, must be one of its headings as GitHub makes anchors of them.
"""

import ast
import glob
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from flask.cli import FlaskGroup, ScriptInfo
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from provisioner import settings as provisioner_settings
from registry import config, create_app

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    [
        ROOT / "README.md",
        ROOT / "SECURITY.md",
        ROOT / "registry/operations/runbook.md",
        *(ROOT / "docs").glob("*.md"),
    ]
)

# REGISTRY_* variables that are not settings of the app, and the file that reads each.
NOT_SETTINGS = {"TEST_DATABASE_URL": "tests/conftest.py", "SCREENSHOTS": "tests/conftest.py"}
# First folders of paths that are the file system's, not the app's URLs.
FILE_SYSTEM = {"app", "etc", "home", "opt", "proc", "run", "tmp", "usr", "var"}
# The hosts the docs give the registry: a URL on one of them names a route of the app.
REGISTRY_HOSTS = ("registry.example", "127.0.0.1:5000")
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")

FENCE = re.compile(r"^\s*```")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"^\.?[\w-]+/[\w./*<>-]*$")
SETTING = re.compile(r"(?<![\w])REGISTRY_([A-Z][A-Z0-9_]*[A-Z0-9])")
URL_ON_HOST = re.compile(
    r"https?://(?:" + "|".join(map(re.escape, REGISTRY_HOSTS)) + r")(/[^\s\"'`)>\]]*)?"
)
URL_PATH = re.compile(r"^(?:(" + "|".join(METHODS) + r") )?(/[\w.~/<>:%-]*)(?:[?#]\S*)?$")
TEST_REF = re.compile(r"^(?:(?:tests/)?((?:\w+/)*test_\w+)\.py)?(?:::(test_\w+))?$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|(?:src|href)=\"([^\"]+)\"")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass
class Facts:
    """What exists: the repository's top folders, the Makefile's targets, the app's commands,
    its settings and routes, and the test files."""

    root: Path
    top_folders: set[str]
    make_targets: set[str]
    commands: dict[str, set[str] | None]  # a group's commands, None for a plain command
    settings: set[str]
    url_adapter: object
    headings: dict[Path, set[str]] = field(default_factory=dict)


def tracked_top_folders(root: Path) -> set[str]:
    files = subprocess.run(
        ["git", "ls-files"],  # noqa: S607 - git from PATH, as scripts/check-image-install
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {f.split("/", 1)[0] for f in files if "/" in f}


def makefile_targets(root: Path) -> set[str]:
    text = (root / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.M))


def cli_commands(app) -> dict[str, set[str] | None]:
    """Every command `flask --app registry` offers, as FlaskGroup builds the list."""
    group = FlaskGroup(create_app=lambda: app)
    ctx = click.Context(group, obj=ScriptInfo(create_app=lambda: app))
    found: dict[str, set[str] | None] = {}
    with ctx:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            found[name] = (
                set(command.list_commands(ctx)) if isinstance(command, click.Group) else None
            )
    return found


def all_settings() -> dict:
    """The registry's settings, and the reference provisioner's own (it reads the same
    ``REGISTRY_`` environment): name -> default."""
    return {
        **provisioner_settings.DEFAULTS,
        **{name: value for name, value in vars(config.Defaults).items() if name.isupper()},
    }


@pytest.fixture(scope="module")
def facts() -> Facts:
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "docs", "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    )
    return Facts(
        root=ROOT,
        top_folders=tracked_top_folders(ROOT),
        make_targets=makefile_targets(ROOT),
        commands=cli_commands(app),
        settings=set(all_settings()),
        url_adapter=app.url_map.bind("localhost"),
    )


# --- reading a document ---------------------------------------------------------------------


def split_code(text: str) -> tuple[list[str], list[str], str]:
    """(inline code spans, lines of fenced blocks, the text outside any code)."""
    spans, block_lines, prose = [], [], []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            block_lines.append(line)
        else:
            spans.extend(INLINE_CODE.findall(line))
            prose.append(INLINE_CODE.sub("", line))
    return spans, block_lines, "\n".join(prose)


def words(code: str) -> list[str]:
    return [w.strip("\"'`,;:()[]{}").rstrip(".") for w in code.split()]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to
    hyphens (so "registry → provisioner" gives "registry--provisioner")."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        heading = None if fenced else HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


# --- the checks -----------------------------------------------------------------------------


def path_problems(code: list[str], facts: Facts) -> list[str]:
    problems = []
    for word in (w for line in code for w in words(line)):
        path = word.split("::", 1)[0].removeprefix("./")
        if not PATH.match(path) or path.split("/", 1)[0] not in facts.top_folders:
            continue
        pattern = re.sub(r"<[^>/]*>", "*", path)
        if not glob.glob(str(facts.root / pattern)):
            problems.append(f"path `{path}` does not exist")
    return problems


def make_problems(code: list[str], facts: Facts) -> list[str]:
    problems = []
    for line in code:
        for target in re.findall(r"(?<![\w-])make\s+([a-z][\w-]*)", line):
            if target not in facts.make_targets:
                problems.append(f"`make {target}`: no such target in the Makefile")
    return problems


def command_problems(code: list[str], facts: Facts) -> list[str]:
    problems = []
    for line in code:
        ws = words(line)
        for i, w in enumerate(ws):
            if w.rsplit("/", 1)[-1] != "flask" or (i and ws[i - 1] in ("from", "import")):
                continue
            rest = ws[i + 1 :]
            if rest[:2] == ["--app", "registry"]:
                rest = rest[2:]
            elif rest[:1] == ["--app=registry"]:
                rest = rest[1:]
            if not rest or not re.fullmatch(r"[a-z][\w-]*", rest[0]):
                continue
            name = rest[0]
            if name not in facts.commands:
                problems.append(f"`flask {name}`: no such command")
                continue
            sub = facts.commands[name]
            named = rest[1] if len(rest) > 1 and re.fullmatch(r"[a-z][\w-]*", rest[1]) else None
            if sub is not None and named is not None and named not in sub:
                problems.append(f"`flask {name} {rest[1]}`: no such command")
    return problems


def setting_problems(text: str, facts: Facts) -> list[str]:
    problems = []
    for name in sorted(set(SETTING.findall(text))):
        if name in facts.settings:
            continue
        if name in NOT_SETTINGS:
            if f"REGISTRY_{name}" not in (facts.root / NOT_SETTINGS[name]).read_text():
                problems.append(f"REGISTRY_{name} is not read by {NOT_SETTINGS[name]}")
            continue
        problems.append(f"REGISTRY_{name} is not a setting of registry/config.py")
    return problems


def url_problems(spans: list[str], code: list[str], facts: Facts) -> list[str]:
    named: list[tuple[str | None, str]] = []
    for span in spans:
        match = URL_PATH.match(span.strip())
        if match and match.group(2).split("/")[1] not in FILE_SYSTEM:
            named.append((match.group(1), match.group(2)))
    for line in code:
        named.extend((None, m.group(1) or "/") for m in URL_ON_HOST.finditer(line))
    problems = []
    for method, path in named:
        concrete = re.sub(r"<[^>]*>", "1", path)
        try:
            facts.url_adapter.match(concrete, method=method or "GET")
        except RequestRedirect:
            pass
        except MethodNotAllowed:
            if method:
                problems.append(f"`{method} {path}`: the app has no such route for {method}")
        except NotFound:
            problems.append(f"`{path}`: the app has no such route")
    return problems


def _test_file(tests: Path, module: str) -> Path | None:
    """The test file a doc cites: by its path under tests/, or by its name alone (``test_x.py``
    names the one file of that name in any folder)."""
    if "/" in module:
        path = tests / f"{module}.py"
        return path if path.is_file() else None
    found = sorted(tests.rglob(f"{module}.py"))
    return found[0] if len(found) == 1 else None


def cited_test_problems(spans: list[str], facts: Facts) -> list[str]:
    problems, module = [], None
    tests = facts.root / "tests"
    for span in spans:
        match = TEST_REF.match(span.strip())
        if not match or not (match.group(1) or match.group(2)):
            continue
        module = match.group(1) or module
        if match.group(1) and not _test_file(tests, module):
            problems.append(f"`{span}`: tests/{module}.py does not exist")
            continue
        if match.group(2):
            if module is None:
                problems.append(f"`{span}`: a test named before any test file")
                continue
            tree = ast.parse(_test_file(tests, module).read_text())
            defined = {
                n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            if match.group(2) not in defined:
                problems.append(f"`{span}`: tests/{module}.py has no {match.group(2)}")
    return problems


def link_problems(doc: Path, text: str, prose: str, facts: Facts) -> list[str]:
    problems = []
    for match in LINK.finditer(prose):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if path and not file.exists():
            problems.append(f"link ({target}): {path} does not exist")
            continue
        if anchor and file.suffix == ".md":
            if file not in facts.headings:
                facts.headings[file] = anchors(text if file == doc else file.read_text())
            if anchor not in facts.headings[file]:
                problems.append(f"link ({target}): no heading #{anchor} in {file.name}")
    return problems


def drift(doc: Path, text: str, facts: Facts) -> list[str]:
    """Every name in ``text`` (the document at ``doc``) that does not exist, in words."""
    spans, block_lines, prose = split_code(text)
    code = spans + block_lines
    return (
        path_problems(code, facts)
        + make_problems(code, facts)
        + command_problems(code, facts)
        + setting_problems(text, facts)
        + url_problems(spans, block_lines, facts)
        + cited_test_problems(spans, facts)
        + link_problems(doc, text, prose, facts)
    )


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_name_in_the_docs_exists(doc, facts):
    assert drift(doc, doc.read_text(), facts) == []


def test_the_checker_finds_every_kind_of_drift(facts):
    made_up = """# A drifted page

## Where things are

The contract is in `registry/contract.py`, once `registry/provisioning/contract.py`. Screens:
`docs/screenshots/*.png`, not `docs/screenshots/*.gif`; pages in `registry/templates/<feature>/`.
Runtime folders are not checked: `instance/gitops`, `<cluster>/<plate>/`, `/etc/prometheus`.

```sh
make run
make deploy-everything
.venv/bin/flask --app registry worker
flask --app registry users create you@example --role support
flask --app registry users promote you@example
flask --app registry frobnicate
python bench/seed.py --database-url postgresql://postgres@127.0.0.1:5432/bench
python bench/no_such_bench.py
curl -X PUT https://registry.example/api/v1/provision/namespace
open http://127.0.0.1:5000/dev/nowhere
```

Set REGISTRY_PUBLIC_URL, `REGISTRY_NO_SUCH_SETTING` and REGISTRY_TEST_DATABASE_URL. Pages:
`/operations/runbook`, `/products/<plate>`, `/admin/nowhere`, `PUT /api/v1/provision/namespace`,
`GET /api/v1/provision/namespace`, `/var/lib/registry`.

Tests: `tests/app/test_security.py::test_every_route_answers_with_the_security_headers`,
`::test_no_such_test`, `test_docs.py::test_the_checker_finds_every_kind_of_drift`,
`test_no_such_file.py`.

Links: [the deploy guide](deploy.md), [its probes](deploy.md#probes), [here](#where-things-are),
[gone](no-such-page.md), [no such section](deploy.md#no-such-section), [nor here](#nowhere),
[a site](https://example.com/x), ![a screen](screenshots/sign-in.png).
"""
    assert drift(ROOT / "docs" / "made-up.md", made_up, facts) == [
        "path `registry/provisioning/contract.py` does not exist",
        "path `docs/screenshots/*.gif` does not exist",
        "path `bench/no_such_bench.py` does not exist",
        "`make deploy-everything`: no such target in the Makefile",
        "`flask users promote`: no such command",
        "`flask frobnicate`: no such command",
        "REGISTRY_NO_SUCH_SETTING is not a setting of registry/config.py",
        "`/admin/nowhere`: the app has no such route",
        "`GET /api/v1/provision/namespace`: the app has no such route for GET",
        "`/dev/nowhere`: the app has no such route",
        "`::test_no_such_test`: tests/app/test_security.py has no test_no_such_test",
        "`test_no_such_file.py`: tests/test_no_such_file.py does not exist",
        "link (no-such-page.md): no-such-page.md does not exist",
        "link (deploy.md#no-such-section): no heading #no-such-section in deploy.md",
        "link (#nowhere): no heading #nowhere in made-up.md",
    ]


def test_the_checker_reads_names_of_every_kind_from_the_real_docs(facts):
    """An extractor that found nothing would pass every document: count what it reads."""
    text = "\n".join(doc.read_text() for doc in DOCS)
    spans, block_lines, _ = split_code(text)
    code = spans + block_lines
    paths = [w for line in code for w in words(line) if PATH.match(w.split("::")[0])]
    assert len(paths) > 50
    assert len(re.findall(r"(?<![\w-])make\s+[a-z]", "\n".join(code))) >= 3
    assert len(re.findall(r"flask\s+--app\s+registry\s+[a-z]", "\n".join(code))) > 10
    assert len(set(SETTING.findall(text))) > 60
    assert sum(1 for s in spans if URL_PATH.match(s.strip())) > 20
    security_tests = [s for s in split_code((ROOT / "SECURITY.md").read_text())[0] if "::" in s]
    assert len(security_tests) > 30


def test_the_configuration_page_lists_every_setting_with_its_default():
    """docs/configuration.md has one row per attribute of Defaults, and a default that is a
    plain value (not None) is written in its row as the environment variable would carry it."""
    rows = {}
    for line in (ROOT / "docs" / "configuration.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`REGISTRY_([A-Z0-9_]+)`", cells[0]) if len(cells) >= 3 else None
        if match:
            assert match.group(1) not in rows, f"REGISTRY_{match.group(1)} has two rows"
            rows[match.group(1)] = cells[1]
    settings = all_settings()
    assert sorted(set(settings) - set(rows)) == [], "settings missing from the page"
    assert sorted(set(rows) - set(settings)) == [], "rows that are not settings"
    for name, value in settings.items():
        if value is None:
            continue
        written = value if isinstance(value, str) else json.dumps(value)
        assert f"`{written}`" in rows[name], f"REGISTRY_{name}: the default is `{written}`"
