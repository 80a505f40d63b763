"""What a job or trial name may be: it is a ledger value, a file name and a terminal label.

The ledger stores names in VARCHAR(200) columns (PostgreSQL refuses longer ones, SQLite
does not: the same job would work on a laptop and fail on the cluster), Ray Tune makes
directory names of them (255 bytes on every common filesystem, with a suffix), and the
terminal shows them. A NUL byte ends a C string (PostgreSQL refuses it in text), and other
control characters rewrite terminals.
"""

from __future__ import annotations

import re

MAX_NAME_CHARS = 200  # the ledger's name columns
MAX_NAME_BYTES = 200  # UTF-8: leaves room for Tune's "-<trial id>" in a 255-byte file name
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Invisible characters that make one name look like another, or reorder what follows it on
# screen (bidi overrides, "Trojan Source"): zero-width space, word joiner, BOM, the
# direction marks, embeddings, overrides and isolates. (Zero-width joiners stay: emoji and
# several scripts need them.)
_INVISIBLE = re.compile("[\u200b\u200e\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff\u061c]")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a job or trial name (a sentence without the key), or None."""
    if m := _CONTROL.search(name):
        return (
            f"must not contain control characters ({m.group()!r} at position {m.start()}); "
            "write the name in plain text"
        )
    if m := _INVISIBLE.search(name):
        return (
            f"must not contain invisible or text-direction characters ({m.group()!r} at "
            f"position {m.start()}): they make a name look like another; type it plainly"
        )
    if len(name) > MAX_NAME_CHARS:
        return f"must be at most {MAX_NAME_CHARS} characters (the ledger's column), not {len(name)}"
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return f"must be at most {MAX_NAME_BYTES} bytes in UTF-8 (a file name), not {size}"
    return None


def shown_name(name: str, limit: int = 60) -> str:
    """repr(name), shortened: a 10,000-character name is not repeated in the message."""
    text = repr(name)
    return text if len(text) <= limit else text[: limit - 5] + " ...'"
