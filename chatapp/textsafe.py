"""Make text from models and files safe to store and to show in a terminal.

Rich and Textual pass ESC and C1 control characters through to the terminal, so an OSC 52
clipboard write or a screen clear inside a reply would reach the tty. Everything a model or a file
supplies goes through `visible()` before it is rendered, and through `storable()` before SQLite.
"""

from __future__ import annotations

import re

# C0 controls except TAB and LF, CR handled separately, DEL, C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Bidirectional overrides can make text read differently from what it is ("Trojan Source").
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # Unicode "control pictures": ESC -> ␛
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\x{code:02x}"


def visible(text: str) -> str:
    """Control characters other than newline and tab made visible; CRLF/CR become newlines; lone
    surrogates (no terminal or file can encode them) become U+FFFD."""
    if not text:
        return text
    text = _SURROGATE.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub(_picture, text)
    return _BIDI.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


def storable(text: str) -> str:
    """Lone surrogates (which SQLite's UTF-8 encoder rejects) replaced with U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)
