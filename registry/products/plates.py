"""Licence plates: six lowercase hex characters, a letter first, random, unique forever."""

import re
import secrets

PLATE_PATTERN = re.compile(r"^[a-f][0-9a-f]{5}$")


def random_plate() -> str:
    # A leading letter: the load balancers of the real pipeline cannot take a leading digit.
    return secrets.choice("abcdef") + "".join(secrets.choice("0123456789abcdef") for _ in range(5))


def is_plate(value: str) -> bool:
    # fullmatch: with match, ``$`` would also accept a trailing newline.
    return bool(PLATE_PATTERN.fullmatch(value))
