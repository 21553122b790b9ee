"""The Textual application: opens the chat screen, loads themes, warms the SDK after first paint."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Iterable
from functools import partial
from pathlib import Path, PurePath
from typing import ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.theme import Theme

from chatapp.config import ConfigError, Settings
from chatapp.service import ChatService, Target
from chatapp.textsafe import visible
from chatapp.tui.exit_watchdog import exit_later
from chatapp.tui.screens.chat import ChatScreen
from chatapp.tui.terminal_keys import distinguish_alt_enter
from chatapp.tui.themes import load_themes

_HERE = Path(__file__).parent
# Ended like ctrl+q (a streaming reply is cancelled, its text flushed); the exit status says which one came.
_QUITTING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class ChatApp(App[None]):
    TITLE = "chatapp"
    CSS_PATH: ClassVar[list[str | PurePath]] = [_HERE / "app.tcss", _HERE / "widgets" / "message_view.tcss"]
    ENABLE_COMMAND_PALETTE = True
    # Textual's own ctrl+q binding is hidden from the footer; this one is shown (and remappable by id).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
        Binding("ctrl+c", "help_quit", show=False, system=True),
    ]

    def __init__(self, service: ChatService, target: Target | None, conversation_id: str | None = None) -> None:
        distinguish_alt_enter()  # before the driver starts reading keys
        super().__init__()
        self.service = service
        self._target = target
        self._conversation_id = conversation_id
        self._quit_signal: int | None = None

    def on_mount(self) -> None:
        self._quit_on_signals()
        settings = self.service.settings
        for theme in load_themes(settings.paths.themes_dir, on_problem=self._theme_problem):
            self.register_theme(theme)
        chosen = self.service.chosen_theme()
        if chosen:
            if chosen in self.available_themes:
                self.theme = chosen
            else:
                self.notify(f"theme {chosen!r} not found; using {self.theme}", severity="warning", markup=False)
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        if settings.keys:
            self.set_keymap(settings.keys)
        for notice in self.service.notices():  # a damaged database set aside, modes tightened, ...
            self.notify(notice, severity="warning", timeout=12)
        self.push_screen(ChatScreen(self.service, self._target, self._conversation_id))
        self.call_after_refresh(self._after_first_paint)

    def _quit_on_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in _QUITTING_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                loop.add_signal_handler(signum, self._quit_by_signal, signum)

    def _quit_by_signal(self, signum: int) -> None:
        """SIGTERM/SIGHUP: quit as ctrl+q does, and exit 128 + the signal as a shell reports a process it ended."""
        self._quit_signal = signum
        self.exit(return_code=128 + signum)

    def _after_first_paint(self) -> None:
        if self._target is not None:
            self.service.start_provider(self._target.provider)  # a local model starts loading now
        self._warm_provider()
        self._discover_servers()

    def _remember_theme(self, theme: Theme) -> None:
        self.service.remember_theme(theme.name)

    @work(group="discover", name="discover-servers", exit_on_error=False)
    async def _discover_servers(self) -> None:
        """Look for local model servers (Ollama, LM Studio, llama.cpp, vLLM) once the first screen is up."""
        found = await self.service.discover_servers()
        if found:
            self.notify(f"Found on this machine: {', '.join(found)} (F3 to pick a model)", timeout=6)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The palette offers every action the chat screen and its messages have a key for."""
        yield from super().get_system_commands(screen)
        if isinstance(screen, ChatScreen) and screen.persona:
            yield SystemCommand("Clear persona", f"Drop {screen.persona} from this conversation's later turns",
                                screen.action_clear_persona)
        if isinstance(screen, ChatScreen):
            yield from self._conversation_commands(screen)
        from chatapp.tui.screens.help import binding_rows_for

        for title, help_text, action in binding_rows_for(screen, self.service.settings.keys):
            yield SystemCommand(title, help_text, partial(screen.run_action, action))

    @staticmethod
    def _conversation_commands(screen: ChatScreen) -> Iterable[SystemCommand]:
        yield SystemCommand("Conversations", "Browse, search, rename and delete saved conversations (ctrl+g)",
                            screen.action_conversations)
        if screen.conversation_id is not None:
            yield SystemCommand("Export conversation as Markdown", "Write it to a .md file in the current "
                                "directory", lambda: screen.export_conversation("md"))
            yield SystemCommand("Export conversation as JSON", "chatapp's JSON (for `chatapp import`) in the "
                                "current directory", lambda: screen.export_conversation("json"))

    def _theme_problem(self, message: str) -> None:
        self.notify(visible(message), severity="warning", timeout=8, markup=False)  # names and paths are text

    @work(thread=True, group="warm", name="warm-provider", exit_on_error=False)
    def _warm_provider(self) -> None:
        """Import the default provider's SDK and build the Markdown renderer off the first-paint path, so the
        first Enter does not wait for them.

        Then freeze what start-up made (modules, classes, the SDK's models: ~150k objects that live as
        long as the process) out of the garbage collector's reach: a full collection walks every tracked
        object, and with these it took 0.2-0.3 s, landing on whatever frame was drawn then (a PageUp, a
        resize). Conversations opened later are not frozen, so their widgets are collected as usual.
        """
        if self._target is not None:
            self.service.warm_provider(self._target.provider)
        from chatapp.tui.widgets.render_warmup import warm_rendering

        warm_rendering()
        gc.freeze()

    async def on_unmount(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in _QUITTING_SIGNALS:
            loop.remove_signal_handler(signum)
        await self.service.aclose()
        if self._quit_signal is not None:  # the terminal may be gone: do not wait on it for ever
            exit_later(128 + self._quit_signal, self.service.unsaved_replies)


def binding_ids() -> set[str]:
    """Every binding id a `[keys]` entry may remap: those of the app, its screens and the prompt."""
    from chatapp.tui.screens.choice import ChoiceScreen
    from chatapp.tui.screens.stats import StatsScreen
    from chatapp.tui.screens.templates import TemplatePicker
    from chatapp.tui.widgets.prompt import PromptInput

    owners = (ChatApp, ChatScreen, ChoiceScreen, StatsScreen, TemplatePicker, PromptInput)
    return {binding.id for owner in owners for cls in owner.__mro__ for binding in getattr(cls, "BINDINGS", ())
            if isinstance(binding, Binding) and binding.id}


def check_keys(settings: Settings) -> None:
    """An id in `[keys]` that no binding has is a config error naming it (Textual would ignore it)."""
    if not settings.keys:
        return
    known = binding_ids()
    for binding_id in settings.keys:
        if binding_id not in known:
            raise ConfigError(f"{settings.source}: keys.{binding_id}: no binding has this id "
                              f"(known: {', '.join(sorted(known))})")


def run(settings: Settings, provider: str | None = None, model: str | None = None,
        conversation_id: str | None = None, *, latest: bool = False) -> int:
    """The TUI: on a new conversation, on `conversation_id`, or on the most recent one (`latest`); however
    long it is, it opens on its last screen (see `load_conversation`)."""
    check_keys(settings)
    service = ChatService.open(settings)
    target: Target | None
    try:
        if latest:
            found = service.latest_conversation()
            conversation_id = found.id if found else None
        has_provider = provider or settings.default_provider or conversation_id
        target = service.target_for(conversation_id, provider, model) if has_provider else None
    except ConfigError:
        service.close()
        raise
    app = ChatApp(service, target, conversation_id)
    app.run()
    for line in service.unsaved_replies():  # after the screen is gone, where the shell shows it
        print(f"chatapp: {line}", file=sys.stderr)
    return app.return_code or 0
