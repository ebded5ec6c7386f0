"""How names are searched: case and accents folded away, so "sante" finds "Santé"; and the
names the platform gives a product's things, which reduce to a licence plate."""

import re
import unicodedata
from dataclasses import dataclass

from .contract import ENVIRONMENTS, parse_workflow

# A licence plate (products/plates.py: imported from there, products would import this module
# back before it is whole).
_PLATE = r"[a-f][0-9a-f]{5}"
_NAMESPACE = re.compile(rf"(?P<plate>{_PLATE})-(?P<env>" + "|".join(ENVIRONMENTS) + ")")
_CLUSTER = re.compile(r"[a-z][a-z0-9]*")


def fold(text: str) -> str:
    """``text`` in lower case without accents: what a name is stored and searched as."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class Identifier:
    """What a namespace or workflow name names: a product's plate, and for a workflow the
    request too."""

    licence_plate: str
    request_id: int | None = None


def parse_identifier(term: str) -> Identifier | None:
    """A namespace name (``<plate>-prod``, ``-tools``, ``-dev``, ``-test``) or a workflow name
    (``<cluster>-<plate>-<requestId>``, contract.workflow_name) as what it names; None for any
    other text. Searching by it is then an index lookup, never a scan."""
    term = term.strip().lower()
    namespace = _NAMESPACE.fullmatch(term)
    if namespace:
        return Identifier(namespace["plate"])
    workflow = parse_workflow(term)
    if workflow and _CLUSTER.fullmatch(workflow[0]) and re.fullmatch(_PLATE, workflow[1]):
        return Identifier(workflow[1], workflow[2])
    return None
