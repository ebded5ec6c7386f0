"""What other features show on a product's pages. The request workflow fills these in
(``registry.wiring``), so that products import nothing from requests."""

from collections.abc import Callable
from dataclasses import dataclass


def _unset(*args):
    raise RuntimeError("registry.wiring.connect_reactions() gives the product pages their parts")


@dataclass
class Parts:
    #: ``listing(product_ids) -> dict``: the context My products adds (each one's open request).
    listing: Callable[..., dict] = _unset
    #: ``detail(product, page) -> dict``: the context the product page adds (its requests, the
    #: open one and its changes, a page of its history).
    detail: Callable[..., dict] = _unset


parts = Parts()
