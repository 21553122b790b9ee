"""Teach Textual's input parser the legacy alt+enter sequence.

Terminals without the kitty keyboard protocol (xterm, tmux, GNOME Terminal, ...) send alt+enter as ESC
followed by CR. Textual 8.2's parser reads the pair together but reports it as a plain `enter`: its
sequence table maps CR to the Enter key and drops the alt prefix for table entries. An entry for the
two-character sequence is consulted before that, so adding one makes the pair arrive as `alt+enter`,
which the prompt turns into a new line. Under the kitty protocol (kitty, WezTerm, foot, Ghostty, ...)
alt+enter and shift+enter arrive as their own CSI-u sequences and need nothing from here.

Textual has no public hook for input sequences, so this writes one entry into its (private) table; if a
later Textual moves the table, nothing is changed and `alt_enter_is_distinct()` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

LEGACY_ALT_ENTER = "\x1b\r"


@dataclass(frozen=True, slots=True)
class _KeyName:
    """Stands in for a `textual.keys.Keys` member: the parser reads only `.value`."""

    value: str


def distinguish_alt_enter() -> bool:
    """Make ESC+CR arrive as `alt+enter`; True when it does."""
    try:
        from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
    except ImportError:
        return False
    ANSI_SEQUENCES_KEYS.setdefault(LEGACY_ALT_ENTER, (_KeyName("alt+enter"),))  # type: ignore[attr-defined]
    return alt_enter_is_distinct()


def alt_enter_is_distinct() -> bool:
    try:
        from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
    except ImportError:
        return False
    entry = ANSI_SEQUENCES_KEYS.get(LEGACY_ALT_ENTER)
    return isinstance(entry, tuple) and [getattr(key, "value", None) for key in entry] == ["alt+enter"]
