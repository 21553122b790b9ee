"""The chat screen's reply: send a prompt, stream the reply's events into its message view, stop it with Esc,
and say inline how a reply (or a compression) ended when its worker was cancelled or crashed.

A reply's worker consumes the service's event stream; the service saves every event whether or not the
screen still shows the conversation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.worker import Worker, WorkerState

from chatapp.config import NO_PROVIDER_ADVICE, ConfigError
from chatapp.domain import (
    MessageStatus,
    MessageTooLong,
    Notice,
    ReplyRestarted,
    SetupHint,
    Target,
    TextDelta,
    TurnEvent,
    TurnFinished,
    TurnStarted,
    Usage,
)
from chatapp.textsafe import visible
from chatapp.tui.screens.chat_history import reply_label
from chatapp.tui.screens.chat_parts import ChatScreenParts
from chatapp.tui.screens.choice import ChoiceScreen
from chatapp.tui.widgets.message import AssistantMessage, NoticeMessage, UserMessage
from chatapp.tui.widgets.prompt import PromptInput

if TYPE_CHECKING:
    from textual.widget import Widget

    from chatapp.tui.widgets.status import StatusLine


@dataclass
class RunningReply:
    """A reply being streamed, and whether this screen still shows its conversation: after ctrl+n it
    finishes unseen into the store."""

    prompt: str
    view: AssistantMessage
    events: AsyncIterator[TurnEvent]
    user: UserMessage | None = None  # learns its message id when the turn starts
    shown: bool = True
    restarts: int = 0
    notice: NoticeMessage | None = None  # the turn's latest retry/fallback notice, updated in place
    streaming_shown: bool = False  # the status line says "streaming" (set once, not per delta)


class ReplyStreaming(ChatScreenParts):
    """Mixed into `ChatScreen` (which provides the attributes declared below and in ChatScreenParts)."""

    if TYPE_CHECKING:  # provided by ChatScreen
        _reply_worker: Worker[None] | None
        _compress_worker: Worker[None] | None
        _current: AssistantMessage | None
        _live_reply: RunningReply | None
        _stopped_prompt: str | None

        @property
        def status(self) -> StatusLine: ...

        @property
        def prompt(self) -> PromptInput: ...

        def refresh_gauge(self) -> Worker[None]: ...

    # --- a turn ------------------------------------------------------------------------------

    def on_prompt_input_submitted(self, event: PromptInput.Submitted) -> None:
        if self.replying:
            self.notify("A reply is still streaming: press Esc to stop it first.", severity="warning")
            return
        if self.target is None:
            self.message_list.mount(NoticeMessage(NO_PROVIDER_ADVICE, error=True))
            return
        self.prompt.earlier_prompts.add(event.text)
        self.prompt.clear()
        self._stopped_prompt = None
        self._start_reply(event.text)

    def _start_reply(self, text: str) -> None:
        assert self.target is not None
        target = self.target
        edited, self.editing = self.editing, None
        events: AsyncIterator[TurnEvent]
        if edited is not None and edited.message_id and self.conversation_id and edited.is_attached:
            self.remove_from(edited)  # the old turns stay in the store as a branch
            events = self.service.edit_and_resend(self.conversation_id, edited.message_id, text,
                                                  provider=target.provider, model=target.model)
        else:
            events = self.service.send(self.conversation_id, text, provider=target.provider, model=target.model,
                                       title=True)
        user = UserMessage(text)
        self.message_list.mount(user)
        self.start_reply_view(events, target, text, user=user)

    def start_reply_view(self, events: AsyncIterator[TurnEvent], target: Target, text: str = "",
                         view: AssistantMessage | None = None, user: UserMessage | None = None) -> None:
        """Show a reply streaming from `events` in `view` (a new message view by default)."""
        if view is None:
            view = AssistantMessage(label=f"{target.provider} · {target.model}")
            self.message_list.mount(view)
        self._current = view
        self.message_list.anchor()
        self._live_reply = RunningReply(text, view, events, user)
        self._reply_worker = self._stream_reply(self._live_reply, target)

    def remove_from(self, widget: Widget) -> None:
        """Take `widget` and every message after it off the screen."""
        children = list(self.message_list.children)
        for child in children[children.index(widget):]:
            child.remove()

    @work(group="reply", name="reply", exit_on_error=False)
    async def _stream_reply(self, running: RunningReply, target: Target) -> None:
        self.status.activity = "waiting"  # until the first token: a silent server is not "streaming"
        async for event in running.events:
            if not running.shown:  # ctrl+n moved on: the service still saves every event
                if isinstance(event, TurnFinished):
                    self.notify(f"The reply in the previous conversation {event.status.value} (saved).",
                                severity="information" if event.status is MessageStatus.COMPLETE else "warning")
                continue
            view = running.view
            if isinstance(event, TextDelta):  # the hot path: thousands per reply, nothing else per delta
                view.append(event.text)
                if not running.streaming_shown:
                    running.streaming_shown = True
                    self.status.activity = "streaming"
            elif isinstance(event, TurnStarted):
                self.conversation_id = event.conversation_id
                view.message_id = event.assistant_message_id
                if running.user is not None:
                    running.user.message_id = event.user_message_id
            elif isinstance(event, Usage):
                self.status.tokens = f"{event.input_tokens:,} in · {event.output_tokens:,} out"
            elif isinstance(event, SetupHint):  # about the setup, not this conversation
                self.notify(event.text, severity="warning", timeout=12)
            elif isinstance(event, Notice):
                running.streaming_shown = False  # the notice replaces "streaming" until text flows again
                if running.notice is None:
                    running.notice = NoticeMessage(event.text)
                    self.message_list.mount(running.notice, before=view)
                else:  # one line per turn says what happened last, not a stack of retries
                    running.notice.update(Text(visible(event.text)))
                self.status.activity = event.text
            elif isinstance(event, MessageTooLong):
                self._offer_truncation(running.prompt, event, target, view)
            elif isinstance(event, ReplyRestarted):
                self._restart_in_place(running, event)
                self.status.activity = "waiting"
                running.streaming_shown = False
            elif isinstance(event, TurnFinished):
                view.set_label(reply_label(event.provider, event.model, running.restarts))
                view.set_status(event.status, event.error)
                self.status.activity = "" if event.status is MessageStatus.COMPLETE else event.status.value
                self.refresh_gauge()

    def _restart_in_place(self, running: RunningReply, event: ReplyRestarted) -> None:
        """A reply that broke off after showing text starts again where it stood, not as a second reply
        below it; the broken attempt stays in the store, marked incomplete."""
        running.restarts += 1
        fresh = AssistantMessage(label=reply_label(event.provider, event.model, running.restarts),
                                 message_id=event.assistant_message_id)
        self.message_list.mount(fresh, after=running.view)
        running.view.remove()
        running.view = self._current = fresh

    def _leave_running_reply(self) -> None:
        """Let a streaming reply finish into its own conversation while the screen shows another."""
        if self._live_reply is not None and self.replying:
            self._live_reply.shown = False
            self.notify("The reply keeps streaming into its conversation and is saved there.")
        self._live_reply = None
        self._reply_worker = None
        self._current = None
        self.status.activity = ""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's end is handled: a reply or a compression that was cancelled or crashed
        says so inline; the app keeps running."""
        if event.worker is self._compress_worker and event.state is WorkerState.ERROR:
            self.status.activity = f"summarizing failed: {_describe(event.worker.error)}"
            return
        if event.worker is not self._reply_worker:
            return
        if event.state is WorkerState.CANCELLED and self._current is not None:
            self._current.set_status(MessageStatus.CANCELLED)
            self.status.activity = "stopped · Esc to edit the prompt"
            self._stopped_prompt = self._live_reply.prompt if self._live_reply is not None else None
        elif event.state is WorkerState.ERROR and self._current is not None:
            failure = self.service.store_failure(event.worker.error) if event.worker.error else None
            self._current.set_status(MessageStatus.ERROR, failure or _describe(event.worker.error))
            self.status.activity = "error"

    def _store_failure(self, exc: Exception) -> str:
        line = self.service.store_failure(exc)
        if line is None:
            raise exc
        return line

    def _offer_truncation(self, text: str, event: MessageTooLong, target: Target, view: AssistantMessage) -> None:
        """A message larger than the window: the user chooses to cut it or to cancel, never a silent cut."""
        view.remove()
        question = (f"This message is {event.tokens:,} tokens, but {target.model} can take at most "
                    f"{event.limit:,} tokens of it. Send a shortened copy (its beginning and end), or cancel?")

        def answered(choice: str | None) -> None:
            if choice == "truncate":
                self._start_reply(self.service.truncate_to_fit(text, event.limit, target.provider, target.model))
            else:
                prompt = self.query_one("#prompt", PromptInput)
                if not prompt.text:
                    prompt.insert(text)  # nothing typed is lost

        self.app.push_screen(ChoiceScreen(question, [("truncate", "Truncate and send"), ("cancel", "Cancel")]),
                             answered)

    @property
    def replying(self) -> bool:
        """A reply is on its way (queued, waiting or streaming)."""
        return self._reply_worker is not None and not self._reply_worker.is_finished

    def action_stop(self) -> None:
        """Esc: stop the streaming reply (its text is kept); pressed again, put the stopped prompt back."""
        if self._reply_worker is not None and self._reply_worker.is_running:
            self._reply_worker.cancel()
        elif self._stopped_prompt is not None:
            if not self.prompt.text:
                self.prompt.recall(self._stopped_prompt)
            self.prompt.focus()
            self._stopped_prompt = None
            self.status.activity = ""


def _describe(error: BaseException | None) -> str:
    """One line for an exception that escaped a worker: a config problem as worded, anything else by type."""
    return str(error) if isinstance(error, ConfigError) else f"{type(error).__name__}: {error}"
