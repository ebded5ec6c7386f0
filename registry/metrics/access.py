"""Who may read the metrics (and the reasons ``/readyz`` gives): a client presenting
``METRICS_TOKEN`` as a bearer token, or one whose address is in ``METRICS_ALLOWED_NETWORKS``
(by default loopback in development, nothing in production). Nobody else sees a number: a
wrong token is told 403, everyone else 404, as if there were nothing here.
"""

import hmac
import ipaddress

OK, FORBIDDEN, NOT_FOUND = 200, 403, 404


def networks(setting) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``METRICS_ALLOWED_NETWORKS``: a list, or a comma-separated string, of CIDR blocks."""
    if setting is None:
        return []
    if isinstance(setting, str):
        setting = setting.split(",")
    blocks = [str(n).strip() for n in setting if str(n).strip()]
    try:
        return [ipaddress.ip_network(block, strict=False) for block in blocks]
    except ValueError as exc:
        raise RuntimeError(f"REGISTRY_METRICS_ALLOWED_NETWORKS: {exc}") from exc


def configure(app) -> None:
    """Read the settings once, and refuse to start on a network that is not one."""
    app.extensions["metrics.networks"] = networks(app.config["METRICS_ALLOWED_NETWORKS"])


def verdict(config: dict, allowed_networks, remote_addr: str | None, authorization: str | None):
    """OK, FORBIDDEN (a bearer token that is not the one) or NOT_FOUND (nothing that lets in)."""
    token = config.get("METRICS_TOKEN")
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and presented.strip():
        if token and hmac.compare_digest(presented.strip().encode(), str(token).encode()):
            return OK
        return FORBIDDEN
    try:
        address = ipaddress.ip_address((remote_addr or "").split("%")[0])
    except ValueError:
        return NOT_FOUND
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if any(address in network for network in allowed_networks):
        return OK
    return NOT_FOUND
