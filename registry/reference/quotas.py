"""Quota option names (``cpu-request-1-limit-2``, ``storage-64``): what they mean in words, and
which of two is larger. The names follow the provisioner's scheme, so they can be read alone."""

import functools
import re

QUOTA_NAME = re.compile(
    r"^(cpu|memory)-request-([\d.]+)-limit-([\d.]+)$|^(storage|snapshot)-(\d+)$"
)


@functools.lru_cache(maxsize=256)
def describe(name: str) -> str:
    """'cpu-request-1-limit-2' as '1 core, limit 2'; an unknown name as it is."""
    match = QUOTA_NAME.match(name or "")
    if not match:
        return name
    kind, request, limit, single, size = match.groups()
    if kind == "cpu":
        return f"{request} {'core' if request == '1' else 'cores'}, limit {limit}"
    if kind == "memory":
        return f"{request} GiB, limit {limit} GiB"
    if single == "storage":
        return f"{size} GiB"
    return f"{size} snapshots"


def size(name: str) -> tuple[float, ...]:
    """A key that orders options of one kind from small to large: (request, limit) or (size,)."""
    match = QUOTA_NAME.match(name or "")
    if not match:
        raise ValueError(f"not a quota option: {name!r}")
    kind, request, limit, _, amount = match.groups()
    return (float(request), float(limit)) if kind else (float(amount),)


def monthly_cost(namespaces: dict[str, dict[str, str]], prices: dict[str, float]) -> float:
    """What ``namespaces`` ({env: {kind: option}}) cost a month at ``prices`` (per core, GiB of
    memory, GiB of storage and snapshot requested, a month): the requests, as quotas hold them."""
    return sum(
        size(option)[0] * float(prices.get(kind, 0))
        for quotas in namespaces.values()
        for kind, option in quotas.items()
    )
