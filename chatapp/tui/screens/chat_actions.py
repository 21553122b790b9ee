"""The chat screen's actions beyond sending: switching provider, picking a model, help, and the actions on
one message (copy, copy a code block, regenerate, edit and resend, continue a truncated reply).

A message action applies to the focused message, or else to the latest one it can apply to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding

from chatapp.domain import MessageStatus, Target
from chatapp.textsafe import visible
from chatapp.tui.screens.chat_parts import ChatScreenParts
from chatapp.tui.widgets.code_blocks import code_blocks
from chatapp.tui.widgets.message import AssistantMessage, NoticeMessage, UserMessage

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from chatapp.domain import TurnEvent


class ChatActions(ChatScreenParts):
    """Mixed into `ChatScreen` (which provides the attributes declared below and in ChatScreenParts)."""

    if TYPE_CHECKING:  # provided by ChatScreen
        @property
        def replying(self) -> bool: ...

        def set_target(self, target: Target | None) -> None: ...

        def start_reply_view(self, events: AsyncIterator[TurnEvent], target: Target, text: str = "",
                             view: AssistantMessage | None = None, user: UserMessage | None = None) -> None: ...

    # --- providers and models ---------------------------------------------------------------

    def action_switch_provider(self) -> None:
        """The next available provider in config order takes the next turn, with the same history."""
        current = self.target.provider if self.target else None
        following = self.service.next_available_provider(current)
        if following is None:
            self.notify("No other provider is available (F3 shows each one's state).", severity="warning")
            return
        self.set_target(following)
        self.service.start_provider(following.provider)  # a local model starts loading now
        self.notify(f"Next turns go to {following.provider} · {following.model}")

    def action_pick_model(self) -> None:
        from chatapp.tui.screens.model_picker import ModelPicker

        def chosen(target: Target | None) -> None:
            if target is not None:
                self.set_target(target)
                self.service.start_provider(target.provider)
                self.notify(f"Next turns go to {target.provider} · {target.model}")

        self.app.push_screen(ModelPicker(self.service, self.target), chosen)

    def action_help(self) -> None:
        from chatapp.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.service.settings.keys))

    # --- which message --------------------------------------------------------------------

    def is_message_key(self, focused: object, key: str) -> bool:
        """`key` is one of the focused message's own actions (so it is not typed into the prompt)."""
        if not isinstance(focused, AssistantMessage | UserMessage):
            return False
        keymap = self.service.settings.keys
        for binding in type(focused).BINDINGS:
            if isinstance(binding, Binding):
                keys = keymap.get(binding.id, binding.key) if binding.id else binding.key
                if key in (k.strip() for k in keys.split(",")):
                    return True
        return False

    def _message(self, kind: type[AssistantMessage] | type[UserMessage]) -> AssistantMessage | UserMessage | None:
        if isinstance(self.focused, kind):
            return self.focused
        found = self.message_list.query(kind)
        return found.last() if found else None

    def _copy_target(self) -> AssistantMessage | UserMessage | None:
        if isinstance(self.focused, AssistantMessage | UserMessage):
            return self.focused
        return self._message(AssistantMessage)

    # --- copy -----------------------------------------------------------------------------

    def action_copy_message(self) -> None:
        """The message's raw text (as typed or received, not as rendered) to the clipboard."""
        message = self._copy_target()
        if message is None or not message.raw_text:
            self.notify("Nothing to copy yet.")
            return
        self.app.copy_to_clipboard(message.raw_text)
        self.notify(f"Copied the message ({len(message.raw_text):,} characters).")

    def action_copy_code(self) -> None:
        """One code block of the reply to the clipboard; with several, the user picks which."""
        message = self._message(AssistantMessage)
        blocks = code_blocks(message.raw_text) if message is not None else []
        if not blocks:
            self.notify("This reply has no code block.")
            return
        if len(blocks) == 1:
            self._copy_block(blocks[0], 1)
            return
        from chatapp.tui.screens.choice import ChoiceScreen

        answers = [(f"block-{n}", _block_label(n, block)) for n, block in enumerate(blocks, 1)]

        def chosen(answer: str | None) -> None:
            if answer is not None:
                number = int(answer.removeprefix("block-"))
                self._copy_block(blocks[number - 1], number)

        self.app.push_screen(ChoiceScreen("Copy which code block?", answers), chosen)

    def _copy_block(self, block: str, number: int) -> None:
        self.app.copy_to_clipboard(block)
        lines = block.count("\n") + (not block.endswith("\n"))
        self.notify(f"Copied code block {number} ({lines} line{'s' if lines != 1 else ''}).")

    # --- regenerate, edit, continue -------------------------------------------------------

    def _can_start(self) -> bool:
        if self.replying:
            self.notify("A reply is still streaming: press Esc to stop it first.", severity="warning")
            return False
        if self.target is None or self.conversation_id is None:
            self.notify("Send a message first.")
            return False
        return True

    def action_regenerate(self) -> None:
        """A new reply to the last message, from the current provider; the old one stays stored."""
        if self._can_start():
            assert self.target is not None
            self._regenerate(self.target)

    def action_regenerate_on(self) -> None:
        """A new reply to the last message from a provider and model picked in the model picker."""
        if not self._can_start():
            return
        from chatapp.tui.screens.model_picker import ModelPicker

        def chosen(target: Target | None) -> None:
            if target is not None and self._can_start():
                self._regenerate(target)

        self.app.push_screen(ModelPicker(self.service, self.target, title="Regenerate the reply with…"), chosen)

    def _regenerate(self, target: Target) -> None:
        assert self.conversation_id is not None
        users = self.message_list.query(UserMessage)
        if not users:
            self.notify("There is no message to answer yet.")
            return
        last_user = users.last()
        children = list(self.message_list.children)
        for child in children[children.index(last_user) + 1:]:
            child.remove()  # the replies stay in the store, as siblings of the new one
        self.start_reply_view(self.service.regenerate(self.conversation_id, provider=target.provider,
                                                      model=target.model), target)

    def action_edit_message(self) -> None:
        """Load an earlier message into the prompt; Enter resends it, the later turns stay as a branch."""
        message = self._message(UserMessage)
        if not isinstance(message, UserMessage) or message.message_id is None:
            self.notify("Nothing to edit yet.")
            return
        if self.replying:
            self.notify("A reply is still streaming: press Esc to stop it first.", severity="warning")
            return
        self.editing = message
        from chatapp.tui.widgets.prompt import PromptInput

        prompt = self.query_one("#prompt", PromptInput)
        prompt.load_text(message.raw_text)
        prompt.focus()
        self.notify("Editing an earlier message: Enter resends it (the turns after it are kept as a branch).")

    def action_continue_reply(self) -> None:
        """Ask for the rest of a reply cut off at the length limit; it is appended to the same message."""
        if not self._can_start():
            return
        assert self.target is not None and self.conversation_id is not None
        replies = self.message_list.query(AssistantMessage)
        last = replies.last() if replies else None
        if last is None or last.status is not MessageStatus.TRUNCATED or last.message_id is None:
            self.notify("Only the last reply, when it was cut off at the length limit, can be continued.")
            return
        view = AssistantMessage(last.raw_text, label=_label_of(last), message_id=last.message_id)
        self.message_list.mount(view, after=last)
        last.remove()
        self.start_reply_view(self.service.continue_reply(self.conversation_id, last.message_id,
                                                          provider=self.target.provider, model=self.target.model),
                              self.target, view=view)

    def show_notice(self, text: str, *, error: bool = False) -> None:
        self.message_list.mount(NoticeMessage(text, error=error))


def _label_of(message: AssistantMessage) -> str:
    return message.label


def _block_label(number: int, block: str) -> str:
    first = next((line for line in block.splitlines() if line.strip()), "")
    first = visible(first.strip())
    return f"{number}: {first[:40]}{'…' if len(first) > 40 else ''}"
