"""Earlier prompts to walk with Up/Down, as in a shell: only while the prompt is empty or still shows the
recalled entry unedited, so arrow keys keep moving the cursor in text being written."""

from __future__ import annotations


class PromptHistory:
    def __init__(self, entries: list[str] | None = None, limit: int = 500) -> None:
        self._entries = list(entries or [])[-limit:]
        self._limit = limit
        self._position: int | None = None  # index of the shown entry while walking; None: not walking

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, text: str) -> None:
        """Remember a sent prompt (a repeat of the newest is kept once) and stop walking."""
        self._position = None
        if text.strip() and (not self._entries or self._entries[-1] != text):
            self._entries.append(text)
            del self._entries[: -self._limit]

    def add_earlier(self, entries: list[str]) -> None:
        """Prompts from before this run (oldest first), placed before the ones sent since."""
        earlier = [text for text in entries if text.strip()]
        self._entries = [*earlier, *self._entries][-self._limit:]
        self._position = None

    def walking(self, shown: str) -> bool:
        """True when `shown` is the recalled entry, untouched."""
        return self._position is not None and self._entries[self._position] == shown

    def older(self, shown: str) -> str | None:
        """The entry before the one shown (the newest from an empty prompt); None when there is none or the
        prompt holds text of the user's own."""
        if self.walking(shown):
            assert self._position is not None
            if self._position == 0:
                return None
            self._position -= 1
        elif shown == "" and self._entries:
            self._position = len(self._entries) - 1
        else:
            return None
        return self._entries[self._position]

    def newer(self, shown: str) -> str | None:
        """The entry after the one shown; "" past the newest (back to an empty prompt); None when not walking."""
        if not self.walking(shown):
            return None
        assert self._position is not None
        if self._position + 1 >= len(self._entries):
            self._position = None
            return ""
        self._position += 1
        return self._entries[self._position]

    def reset(self) -> None:
        self._position = None
