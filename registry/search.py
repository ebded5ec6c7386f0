"""How names are searched: case and accents folded away, so "sante" finds "Santé"."""

import unicodedata


def fold(text: str) -> str:
    """``text`` in lower case without accents: what a name is stored and searched as."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
