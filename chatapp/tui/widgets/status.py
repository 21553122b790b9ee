"""One line under the prompt: provider · model · tokens · what is happening now."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class StatusLine(Static):
    provider: reactive[str] = reactive("")
    model: reactive[str] = reactive("")
    tokens: reactive[str] = reactive("")
    context: reactive[str] = reactive("")
    activity: reactive[str] = reactive("")
    model_state: reactive[str] = reactive("")

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.provider:
            text.append(self.provider, style="bold")
            text.append(" · ")
            text.append(self.model)
        else:
            text.append("no provider", style="bold")
        if self.context:
            text.append(" · ")
            text.append(self.context)
        if self.tokens:
            text.append(" · ")
            text.append(self.tokens)
        if self.model_state:
            text.append(" · ")
            text.append(self.model_state, style="italic")
        if self.activity:
            text.append(" · ")
            text.append(self.activity, style="italic")
        return text
