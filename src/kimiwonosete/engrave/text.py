"""Untrusted text (titles from files, uploads, video metadata) made safe for the engravers."""

from __future__ import annotations

import unicodedata

MAX_TITLE_CHARS = 200


def clean_text(text: str) -> str:
    """Drop control and format characters, collapse whitespace, cap the length.

    >>> clean_text("a\\x00b\\n  c\\u202e")
    'ab c'
    """
    kept = "".join(ch if not unicodedata.category(ch).startswith("C") else (" " if ch in "\t\n\r" else "") for ch in text)
    return " ".join(kept.split())[:MAX_TITLE_CHARS]


def lilypond_string(text: str) -> str:
    """``text`` as a quoted LilyPond string literal that can only ever print as text.

    Inside a string literal ``#`` and ``$`` are plain characters; the only ways out of one are
    an unescaped quote or backslash, and both are escaped here.

    >>> print(lilypond_string('#(system "touch PWNED")'))
    "#(system \\"touch PWNED\\")"
    """
    return '"' + clean_text(text).replace("\\", "\\\\").replace('"', '\\"') + '"'
