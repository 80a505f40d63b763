"""Making names from job files, the ledger and MLflow safe to print.

Job, trial and model names come from job files anyone may share, and from a ledger or
tracking server other users write to. Printed raw, an escape sequence in a name can
retitle or rewrite someone's terminal, and rich markup in a name (``x[/]``) makes rich
raise MarkupError, which on a shared ledger breaks `orch status` for everyone. Every
print site passes names through `plain` (plain-text output) or `safe` (rich markup).
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, C1 controls (0x9b is a one-byte CSI), and the
# Unicode bidirectional overrides that make text display in another order than it reads.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NEWLINE = re.compile(f"[\n\t]|{_CONTROL.pattern}")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(text: object, *, newlines: bool = False) -> str:
    """`text` with every terminal control character shown as a visible escape (\\x1b).

    newlines=True keeps line breaks and tabs (multi-line messages); a name never needs them.
    """
    pattern = _CONTROL if newlines else _CONTROL_OR_NEWLINE
    return pattern.sub(_visible, str(text))


def safe(text: object) -> str:
    """`text` for a rich markup string: control characters made visible, and every
    markup bracket escaped, so the name prints exactly as it is spelled."""
    from rich.markup import escape

    body = plain(text)
    stem = body.rstrip("\\")
    if stem == body:
        return escape(body)
    # rich reads backslashes only in front of a tag, halving them there. Trailing ones are
    # doubled and closed by an empty span, so they read the same at the end of a cell and
    # in front of a closing tag (rich's own escape() gets two or more of them wrong).
    return escape(stem) + "\\" * (2 * (len(body) - len(stem))) + "[bold][/bold]"


def plain_json(text: str) -> str:
    """JSON text with the control characters JSON lets through raw (DEL, C1, bidi
    overrides) written as \\uXXXX escapes: the same document, safe on a terminal."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
