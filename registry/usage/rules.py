"""Usage-based approval of quota increases: the rule, and the evidence kept on the request.

An increase passes without review when every resource it raises in every namespace is used:
CPU or memory at least ``AUTO_APPROVE_USED_SHARE`` of the current request, on average over the
window; storage above ``AUTO_APPROVE_STORAGE_SHARE`` of what its claims hold. A rise of more
than ``AUTO_APPROVE_MAX_RISE`` that ends above the small sizes always goes to review, and so does
every increase whose usage cannot be read (snapshots have no usage metric at all)."""

from dataclasses import asdict, dataclass

from ..reference import quotas
from .namespaces import Measured, Unmeasured

SMALL = {"cpu": "AUTO_APPROVE_SMALL_CPU_CORES", "memory": "AUTO_APPROVE_SMALL_MEMORY_GIB",
         "storage": "AUTO_APPROVE_SMALL_STORAGE_GIB"}  # fmt: skip
UNITS = {"cpu": "cores", "memory": "GiB", "storage": "GiB"}
NAMES = {"cpu": "CPU", "memory": "memory", "storage": "storage", "snapshot": "snapshots"}


@dataclass(frozen=True)
class Check:
    """One raised resource of one namespace, and what its usage says of it."""

    field: str  # as in changes.Change: namespaces.<env>.<resource>
    env: str
    resource: str
    current: float
    asked: float
    used: float | None  # the figure the rule compares: average (CPU, memory) or now (storage)
    limit: float | None  # what it is compared with: a share of the request, or of the claims
    passed: bool
    why: str
    claimed: float | None = None  # storage: what the claims hold (GiB)


@dataclass(frozen=True)
class Evidence:
    """What the rule saw and decided, stored on the request (``usage_evidence``)."""

    passed: bool
    cluster: str
    available: bool
    reason: str
    window_days: int | None
    measured_at: str | None
    checks: tuple[Check, ...]

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def summary(self) -> str:
        return summary_of(self.as_dict())


def summary_of(evidence: dict) -> str:
    """What the evidence says, in words (as kept on a request: ``Evidence.as_dict()``)."""
    if not evidence["available"]:
        return f"usage could not be read: {evidence['reason']}"
    return "; ".join(check["why"] for check in evidence["checks"])


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def check(env: str, resource: str, before: str, after: str, usage, config) -> Check:
    field = f"namespaces.{env}.{resource}"
    current, asked = quotas.size(before)[0], quotas.size(after)[0]
    name = f"{env} {NAMES[resource]}"
    if resource not in UNITS:
        return Check(field, env, resource, current, asked, None, None, False,
                     f"{name}: there is no usage measure for it")  # fmt: skip
    rise = (asked - current) / current if current else float("inf")
    small = float(config[SMALL[resource]])
    if rise > float(config["AUTO_APPROVE_MAX_RISE"]) and asked > small:
        return Check(field, env, resource, current, asked, None, None, False,
                     f"{name} rises by {rise:.0%}, more than "
                     f"{float(config['AUTO_APPROVE_MAX_RISE']):.0%} and beyond "
                     f"{_fmt(small)} {UNITS[resource]}")  # fmt: skip
    figures = usage.of(env, resource)
    if resource == "storage":
        used, claimed = figures.now, figures.capacity
        share = float(config["AUTO_APPROVE_STORAGE_SHARE"])
        if used is None or not claimed:
            return Check(field, env, resource, current, asked, used, None, False,
                         f"{name}: no volume use measured")  # fmt: skip
        limit = share * claimed
        passed = used > limit
        verdict = "above" if passed else "not above"
        return Check(field, env, resource, current, asked, used, limit, passed,
                     f"{name}: {_fmt(used)} GiB used of {_fmt(claimed)} GiB claimed "
                     f"({used / claimed:.0%}; {verdict} {share:.0%})", claimed)  # fmt: skip
    share = float(config["AUTO_APPROVE_USED_SHARE"])
    used, limit = figures.average, share * current
    if used is None:
        return Check(field, env, resource, current, asked, None, limit, False,
                     f"{name}: no use measured")  # fmt: skip
    passed = used >= limit
    window = getattr(usage, "window_days", None)
    return Check(field, env, resource, current, asked, used, limit, passed,
                 f"{name}: {_fmt(used)} {UNITS[resource]} used on average over {window} days "
                 f"of {_fmt(current)} requested ({used / current:.0%}; "
                 f"{'at least' if passed else 'under'} {share:.0%})")  # fmt: skip


def judge(increases, before: dict, after: dict, usage: Measured | Unmeasured, config) -> Evidence:
    """The evidence for the quota increases ``increases`` (fields namespaces.<env>.<kind>)."""
    checks = []
    for field in increases:
        _, env, resource = field.split(".")
        old = before["namespaces"][env][resource]
        new = after["namespaces"][env][resource]
        if usage.available or resource not in UNITS:
            checks.append(check(env, resource, old, new, usage, config))
        else:
            current, asked = quotas.size(old)[0], quotas.size(new)[0]
            checks.append(Check(field, env, resource, current, asked, None, None, False,
                                f"{env} {NAMES[resource]}: usage could not be read"))  # fmt: skip
    return Evidence(
        passed=bool(checks) and all(c.passed for c in checks),
        cluster=usage.cluster,
        available=usage.available,
        reason=getattr(usage, "reason", ""),
        window_days=getattr(usage, "window_days", None),
        measured_at=getattr(usage, "measured_at", None),
        checks=tuple(checks),
    )


def would_pass(evidence: dict, config) -> bool | None:
    """Would the increase kept with ``evidence`` pass under the thresholds of ``config``? From
    the stored figures alone, without Prometheus; None if its usage could not be read then."""
    if not evidence.get("available") or not evidence.get("checks"):
        return None
    for c in evidence["checks"]:
        resource, current, asked, used = c["resource"], c["current"], c["asked"], c["used"]
        if resource not in UNITS:
            return False
        rise = (asked - current) / current if current else float("inf")
        if rise > float(config["AUTO_APPROVE_MAX_RISE"]) and asked > float(config[SMALL[resource]]):
            return False
        if used is None:
            return False
        if resource == "storage":
            claimed = c.get("claimed")
            if not claimed or used <= float(config["AUTO_APPROVE_STORAGE_SHARE"]) * claimed:
                return False
        elif used < float(config["AUTO_APPROVE_USED_SHARE"]) * current:
            return False
    return True
