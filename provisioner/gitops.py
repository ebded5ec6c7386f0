"""The GitOps repository, driven with the git command line (what a pipeline runner has)."""

import os
import subprocess
from pathlib import Path

AUTHOR = ("Registry Provisioner", "provisioner@registry.local")


class GitError(RuntimeError):
    pass


class Repository:
    """A local git repository with a working tree; ``main`` is what Argo CD would deploy."""

    def __init__(self, path: Path, main: str = "main", web_url: str | None = None):
        self.path = Path(path)
        self.main = main
        # Where people browse the repository (e.g. https://github.com/org/gitops), if anywhere.
        self.web_url = web_url.rstrip("/") if web_url else None

    def commit_url(self, sha: str) -> str | None:
        return f"{self.web_url}/commit/{sha}" if self.web_url else None

    def git(self, *args: str, check: bool = True) -> str:
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": AUTHOR[0],
            "GIT_AUTHOR_EMAIL": AUTHOR[1],
            "GIT_COMMITTER_NAME": AUTHOR[0],
            "GIT_COMMITTER_EMAIL": AUTHOR[1],
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        result = subprocess.run(  # noqa: S603 - git with our own arguments
            ["git", "-C", str(self.path), *args],  # noqa: S607 - git from PATH, as a runner has
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if check and result.returncode != 0:
            raise GitError(
                f"git {' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}"
            )
        return result.stdout.strip()

    def ensure(self) -> "Repository":
        """Create the repository with an empty first commit on ``main`` if it does not exist."""
        if not (self.path / ".git").exists():
            self.path.mkdir(parents=True, exist_ok=True)
            self.git("init", "-q", "-b", self.main)
            (self.path / "README.md").write_text(
                "# GitOps repository\n\nManifests written by the registry's reference provisioner:"
                " one folder per cluster and product (`<cluster>/<licence plate>/`).\n"
            )
            self.git("add", "README.md")
            self.git("commit", "-q", "-m", "Start the GitOps repository")
        return self

    def start_branch(self, branch: str) -> None:
        """Check out ``branch`` fresh from ``main`` (a re-run starts again from what is merged).

        What a workflow that failed half-way left in the working tree (files written, not
        committed) is thrown away first: the next workflow's commit would take it otherwise.
        """
        self.git("reset", "-q", "--hard")
        self.git("clean", "-q", "-f", "-d")
        self.git("checkout", "-q", "-B", branch, self.main)

    def commit_all(self, message: str) -> str | None:
        """Commit every change in the working tree; None when there was nothing to commit."""
        self.git("add", "-A")
        if not self._staged():
            return None
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def _staged(self) -> bool:
        result = subprocess.run(  # noqa: S603
            ["git", "-C", str(self.path), "diff", "--cached", "--quiet"],  # noqa: S607
            check=False,
        )
        return result.returncode == 1

    def merge(self, branch: str, message: str) -> str:
        """Merge ``branch`` into ``main`` (what the auto-merged pull request does)."""
        self.git("checkout", "-q", self.main)
        if self.git("rev-parse", branch) != self.git("rev-parse", self.main):
            self.git("merge", "-q", "--no-ff", "-m", message, branch)
        return self.git("rev-parse", "HEAD")

    def log(self, ref: str = "main") -> list[str]:
        return self.git("log", "--format=%s", ref).splitlines()
