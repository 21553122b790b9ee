"""One line under the prompt: provider · model · persona · window · tokens · what is happening now.

When the line is narrower than all of it, the least useful parts go first (tokens, then the window
gauge, the persona, the model), so what is happening now and who answers stay visible at 60 columns."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

_SEPARATOR = " · "


class StatusLine(Static):
    provider: reactive[str] = reactive("")
    model: reactive[str] = reactive("")
    persona: reactive[str] = reactive("")
    tokens: reactive[str] = reactive("")
    context: reactive[str] = reactive("")
    activity: reactive[str] = reactive("")
    model_state: reactive[str] = reactive("")

    def parts(self) -> list[tuple[int, str, str]]:
        """(priority to keep: lower is dropped first, text, style) in display order."""
        parts = [(9, self.provider or "no provider", "bold")]
        if self.provider:
            parts.append((4, self.model, ""))
        if self.persona:
            parts.append((3, f"persona {self.persona}", "italic"))
        if self.context:
            parts.append((2, self.context, ""))
        if self.tokens:
            parts.append((1, self.tokens, ""))
        if self.model_state:
            parts.append((7, self.model_state, "italic"))
        if self.activity:
            parts.append((8, self.activity, "italic"))
        return parts

    def render(self) -> Text:
        parts = self.parts()
        width = self.content_region.width or self.size.width
        while len(parts) > 1 and width and len(_SEPARATOR.join(p[1] for p in parts)) > width:
            parts.remove(min(parts, key=lambda p: p[0]))
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, (_, label, style) in enumerate(parts):
            if index:
                text.append(_SEPARATOR)
            text.append(label, style=style)
        return text
