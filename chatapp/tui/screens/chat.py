"""The chat screen: the conversation, the prompt, the status line and the footer."""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.worker import Worker

from chatapp.config import LOCAL_MODEL_INSTALL, ConfigError
from chatapp.domain import (
    LoadState,
    Role,
    Target,
)
from chatapp.service import ChatService
from chatapp.tui.screens.chat_actions import ChatActions
from chatapp.tui.screens.chat_history import DeferredMessage, collapse_restarts, message_widgets
from chatapp.tui.screens.chat_reply import ReplyStreaming, RunningReply
from chatapp.tui.screens.welcome import WelcomeNotice
from chatapp.tui.widgets.message import AssistantMessage, BranchMarker, NoticeMessage, UserMessage
from chatapp.tui.widgets.message_list import MessageList
from chatapp.tui.widgets.prompt import PromptInput
from chatapp.tui.widgets.status import StatusLine


class ChatScreen(ReplyStreaming, ChatActions, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop reply", id="stop"),
        Binding("ctrl+n", "new_conversation", "New chat", id="new_conversation"),
        # priority: a remapped key (f6, say) must win over the prompt's own bindings while it has focus
        Binding("f2", "switch_provider", "Next provider", id="switch_provider", priority=True),
        Binding("f3", "pick_model", "Models", id="pick_model", priority=True),
        Binding("ctrl+t", "templates", "Templates", id="templates"),
        Binding("ctrl+o", "stats", "Stats", id="stats"),
        Binding("ctrl+g", "conversations", "Chats", id="conversations"),
        Binding("alt+left", "step_branch(-1)", "Previous version", id="previous_branch", show=False),
        Binding("alt+right", "step_branch(1)", "Next version", id="next_branch", show=False),
        Binding("ctrl+l", "compress", "Compress", id="compress"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="regenerate_last", show=False),
        Binding("f1", "help", "Help", id="help", priority=True),
        # Priority: they scroll the conversation while the prompt (a TextArea with its own paging) has focus.
        Binding("pageup", "scroll_messages('page_up')", "Scroll up", id="scroll_up", show=False, priority=True),
        Binding("pagedown", "scroll_messages('page_down')", "Scroll down", id="scroll_down", show=False,
                priority=True),
        Binding("ctrl+home", "scroll_messages('top')", "Scroll to top", id="scroll_top", show=False, priority=True),
        Binding("ctrl+end", "scroll_messages('bottom')", "Scroll to bottom", id="scroll_bottom", show=False,
                priority=True),
    ]

    def __init__(self, service: ChatService, target: Target | None, conversation_id: str | None = None) -> None:
        super().__init__()
        self.service = service
        self.target = target
        self.conversation_id = conversation_id
        self._reply_worker: Worker[None] | None = None
        self._compress_worker: Worker[None] | None = None
        self._current: AssistantMessage | None = None
        self._live_reply: RunningReply | None = None
        self._stopped_prompt: str | None = None  # Esc after a stop puts it back in the prompt
        self._told_local_default = False  # the "which local model, how to pull one" note: once per run
        self.editing: UserMessage | None = None  # an earlier message being edited: Enter resends it

    def compose(self) -> ComposeResult:
        yield MessageList(id="messages")
        yield PromptInput(id="prompt")
        yield StatusLine(id="status")
        yield Footer()

    @property
    def message_list(self) -> MessageList:
        return self.query_one("#messages", MessageList)

    @property
    def status(self) -> StatusLine:
        return self.query_one("#status", StatusLine)

    def on_mount(self) -> None:
        self.message_list.anchor()  # follow new text to the bottom until the user scrolls up
        self._model_watch = self.set_interval(0.25, self._watch_model_load, name="model-load")
        self.set_target(self.target)
        self.prompt.focus()  # before the history: a focus change restyles every widget
        self.load_conversation(self.conversation_id)
        self.call_after_refresh(self._load_history)  # after the first paint

    @property
    def prompt(self) -> PromptInput:
        return self.query_one("#prompt", PromptInput)

    def _load_history(self) -> None:
        self.prompt.earlier_prompts.add_earlier(self.service.recent_prompts())

    # --- seams for the conversation browser and provider switching --------------------------

    def _watch_model_load(self) -> None:
        """Show a local model's load in the status line: loading, then ready (with its time) or why it failed."""
        if self.target is None or not self.service.is_local(self.target.provider):
            self._model_watch.pause()  # nothing loads: set_target resumes it for a local model
            return
        load = self.service.provider_loading(self.target.provider)
        if load is None:
            return
        if load.state is LoadState.LOADING:
            self.status.model_state = "loading model…"
        elif load.state is LoadState.READY:
            self.status.model_state = f"model loaded in {load.detail}" if load.detail else ""
            self._model_watch.stop()
            self.set_timer(4, lambda: setattr(self.status, "model_state", ""))
        elif load.state is LoadState.FAILED:
            self.status.model_state = "model failed to load"
            self.message_list.mount(NoticeMessage(f"The local model could not be loaded: {load.detail}", error=True))
            self._model_watch.stop()

    def set_target(self, target: Target | None) -> None:
        """Where the next turn goes; the history stays the same."""
        self.target = target
        self.status.provider = target.provider if target else ""
        self.status.model = target.model if target else ""
        if target is not None and hasattr(self, "_model_watch"):
            self._model_watch.resume()
        if self.is_mounted:
            self.call_after_refresh(self.refresh_gauge)

    @work(exclusive=True, group="gauge", name="gauge", exit_on_error=False)
    async def refresh_gauge(self) -> None:
        """Window usage for the next turn (the service counts in a thread: a long paste takes a while)."""
        if self.target is None:
            return
        gauge = await self.service.gauge(self.conversation_id, self.target.provider, self.target.model)
        summary = f" · {gauge.summarized} summary" if gauge.summarized else ""
        self.status.context = f"{gauge}{summary}"

    def load_conversation(self, conversation_id: str | None, at_message: str | None = None) -> None:
        """Show a saved conversation (or an empty one) in place of the current view, at its end or at
        `at_message` (a search hit, then highlighted). A reply still streaming keeps going into its own
        conversation (saved; reopen it to read it).

        The entry point for opening any conversation, however long: messages become widgets that hold
        their text as data; the newest are mounted for the first screen and only the blocks that screen
        shows are rendered (`MessageList.show_history`).
        """
        self._leave_running_reply()
        self._stopped_prompt = None
        self.editing = None
        self.conversation_id = conversation_id
        self.status.persona = self.service.persona(conversation_id) or ""
        self.message_list.clear()
        self.status.tokens = ""
        if conversation_id is None:
            self.call_after_refresh(self.refresh_gauge)  # after the first paint: counting loads tiktoken
            if self.target is None:
                config = self.service.settings.paths.config_file
                self.message_list.mount(WelcomeNotice(str(config), LOCAL_MODEL_INSTALL))
            elif not self._told_local_default and self.target.provider == self.service.default_provider:
                self._told_local_default = True
                note = self.service.local_default_note()
                if note:
                    self.message_list.mount(NoticeMessage(note))
            return
        try:
            messages = self.service.messages(conversation_id)
            summaries = self.service.summaries(conversation_id)
            branch_counts = self.service.branch_counts(conversation_id)
        except Exception as exc:  # a damaged page or a held lock: one line in place of the history
            self.message_list.mount(NoticeMessage(self._store_failure(exc), error=True))
            return
        summary = summaries[-1] if summaries else None  # summaries roll: the newest covers the earlier ones
        ids = [m.id for m in messages]
        position = ids.index(summary.last_message_id) + 1 if summary and summary.last_message_id in ids else None
        widgets = message_widgets(collapse_restarts(messages), branch_counts,
                                  self.service.siblings, summary, position)
        self.message_list.show_history(widgets)
        target = next((w for w in widgets if at_message and getattr(w, "message_id", None) == at_message
                       and not isinstance(w, BranchMarker)), None)
        if target is not None:
            if isinstance(target, DeferredMessage):
                target.hit = True  # marked when it is built
                if target.widget is not None:
                    target.widget.add_class("-hit")
            else:
                target.add_class("-hit")
            self.message_list.release_anchor()
            self._scroll_to_hit(target)
        self.refresh_gauge()

    @work(group="hit", name="scroll-to-hit", exclusive=True, exit_on_error=False)
    async def _scroll_to_hit(self, target: Widget | DeferredMessage) -> None:
        """Older messages are mounted as they are needed, newest first: have the hit's mounted, then show it."""
        self.message_list.mount_through(target)
        for _ in range(600):  # 10 s at most, a frame at a time
            widget = target.widget if isinstance(target, DeferredMessage) else target
            if widget is not None and widget.is_mounted:
                self.call_after_refresh(partial(self.message_list.scroll_to_widget, widget, animate=False, top=True))
                return
            await asyncio.sleep(1 / 60)

    def action_stats(self) -> None:
        from chatapp.tui.screens.stats import StatsScreen

        self.app.push_screen(StatsScreen(self.service))

    def action_templates(self) -> None:
        """Pick a template: a system one becomes this conversation's persona, a user one fills the prompt."""
        from chatapp.tui.screens.templates import TemplateChoice, TemplatePicker

        if self.target is None:
            self.notify("Set up a provider first.", severity="warning")
            return
        target = self.target
        conversation_id = self.conversation_id or self.service.new_conversation_id()

        def chosen(choice: TemplateChoice | None) -> None:
            if choice is None:
                return
            if self.conversation_id is None:
                self.service.new_conversation(target.provider, target.model, conversation_id=conversation_id)
                self.conversation_id = conversation_id
            self.service.apply_template(conversation_id, choice.prompt, choice.assignment)
            name = f"{choice.prompt.name}@{choice.prompt.version}"
            if choice.prompt.role is Role.USER:
                prompt = self.query_one("#prompt", PromptInput)
                prompt.load_text(choice.prompt.text)
                prompt.focus()
            else:
                self.message_list.mount(NoticeMessage(f"Persona: {name} is now this conversation's system prompt."))
                self.status.persona = name
            self.refresh_gauge()

        self.app.push_screen(TemplatePicker(self.service, conversation_id), chosen)

    @property
    def persona(self) -> str:
        return self.status.persona

    def action_clear_persona(self) -> None:
        """Palette: later turns of this conversation go without the persona's system prompt."""
        if self.conversation_id is None or not self.status.persona:
            self.notify("This conversation has no persona.")
            return
        name = self.status.persona
        self.service.clear_persona(self.conversation_id)
        self.status.persona = ""
        self.message_list.mount(NoticeMessage(f"Persona {name} cleared: later turns go without it."))
        self.refresh_gauge()

    def action_compress(self) -> None:
        if self.conversation_id is None:
            self.notify("Nothing to compress yet.")
            return
        self.status.activity = "summarizing older turns…"
        self._compress_worker = self._compress(self.conversation_id)

    @work(exclusive=True, group="compress", name="compress", exit_on_error=False)
    async def _compress(self, conversation_id: str) -> None:
        made = await self.service.compress_now(conversation_id)
        self.status.activity = ""
        if not made:
            self.notify("Nothing to summarize: the newest turns are always kept verbatim.")
        elif self.conversation_id == conversation_id and not self.replying:
            self.load_conversation(conversation_id)

    def action_conversations(self) -> None:
        """The browser: pick a conversation (or a search hit) to open here."""
        from chatapp.tui.screens.conversations import ConversationsScreen, OpenRequest

        def chosen(request: OpenRequest | None) -> None:
            if request is not None:
                self.open_conversation(request.conversation_id, request.message_id)

        self.app.push_screen(ConversationsScreen(self.service), chosen)

    def export_conversation(self, fmt: str) -> None:
        """Export the open conversation to `chatapp-<id>.<md|json>` in the current directory (mode 0600)."""
        if self.conversation_id is None:
            return
        path = Path.cwd() / f"chatapp-{self.conversation_id}.{fmt}"
        try:
            self.service.export_to_file([self.conversation_id], fmt, path)
        except OSError as exc:
            self.notify(f"Could not write {path}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"Exported to {path}")

    def open_conversation(self, conversation_id: str, at_message: str | None = None) -> None:
        """Open a saved conversation, on the branch through `at_message` when given; later turns go to the
        provider it last used (when that is still configured)."""
        if self.replying:
            self.notify("A reply is still streaming: press Esc to stop it first.", severity="warning")
            return
        if at_message is not None:
            self.service.open_at(at_message)
        with contextlib.suppress(ConfigError):  # no provider configured: the conversation is still worth reading
            self.set_target(self.service.target_for(conversation_id))
        self.load_conversation(conversation_id, at_message)

    def action_step_branch(self, step: int) -> None:
        """Show the previous/next version of the message with alternatives nearest the bottom of the view."""
        if self.conversation_id is None or self.replying:
            return
        markers = list(self.message_list.query(BranchMarker))
        if not markers:
            self.notify("No other versions here: regenerated replies and edited prompts appear as versions.")
            return
        bottom = self.message_list.scroll_offset.y + self.message_list.size.height
        visible_markers = [m for m in markers if m.virtual_region.y < bottom] or markers
        chosen = self.service.step_sibling(visible_markers[-1].message_id, step)
        if chosen is None:
            self.notify("No more versions that way.")
            return
        self.load_conversation(self.conversation_id, chosen.id)

    def action_new_conversation(self) -> None:
        self.load_conversation(None)
        self.prompt.focus()

    def action_scroll_messages(self, where: str) -> None:
        messages = self.message_list
        if where in ("page_up", "top"):
            messages.release_anchor()  # stay where the user scrolled while a reply streams
        if where == "page_up":
            messages.scroll_page_up(animate=False)
        elif where == "page_down":
            messages.scroll_page_down(animate=False)
        elif where == "top":
            messages.scroll_home(animate=False)
        else:
            messages.scroll_end(animate=False)

    def on_key(self, event: events.Key) -> None:
        """Typing while the conversation has focus (after a click or Tab) goes to the prompt."""
        prompt = self.prompt
        if event.is_printable and event.character and self.focused is not prompt:
            focused = self.focused
            if self.is_message_key(focused, event.key):
                return  # a focused message's own action (c: copy, …)
            if focused is None or focused is self.message_list or self.message_list in focused.ancestors:
                event.stop()
                prompt.focus()
                prompt.insert(event.character)
