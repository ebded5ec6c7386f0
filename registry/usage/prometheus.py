"""The Prometheus HTTP API (``/api/v1/query``): one instant query, a short timeout, and every
way it can fail turned into :class:`Unavailable` with a reason a person can act on."""

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass


class Unavailable(Exception):
    """Usage could not be read; ``str()`` says why, in words shown on pages."""


@dataclass(frozen=True)
class Source:
    """One cluster's Prometheus (or Thanos querier): its URL, an optional bearer token and CA."""

    url: str
    token: str | None = None
    ca_file: str | None = None
    timeout: float = 2.0

    def query(self, promql: str) -> list[tuple[dict, float]]:
        """The instant vector ``promql`` gives now: (labels, value) per series."""
        address = (
            self.url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        )
        request = urllib.request.Request(address, headers={"Accept": "application/json"})  # noqa: S310
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        try:
            with urllib.request.urlopen(  # noqa: S310 - a URL from the registry's settings
                request, timeout=self.timeout, context=context
            ) as response:
                body = json.loads(response.read(4 * 1024 * 1024))
        except urllib.error.HTTPError as exc:
            raise Unavailable(f"Prometheus answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unavailable(f"Prometheus could not be reached ({reason})") from None
        except ValueError:
            raise Unavailable("Prometheus answered something that is not its JSON") from None
        if body.get("status") != "success":
            raise Unavailable(f"Prometheus refused the query: {body.get('error', 'no reason')}")
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise Unavailable("Prometheus answered an unexpected kind of result")
        found = []
        for series in data.get("result", []):
            try:
                found.append((series.get("metric", {}), float(series["value"][1])))
            except (KeyError, IndexError, TypeError, ValueError):
                raise Unavailable("Prometheus answered a malformed series") from None
        return found
