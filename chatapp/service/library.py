"""The conversation library half of ChatService: search, rename, delete, branches, export and import.

Conversations are trees (DESIGN.md): a regenerated reply or an edited prompt is a sibling, nothing is
overwritten, and `messages()` is the path from the root to the current leaf.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from chatapp.domain import Conversation, Message, SearchHit
from chatapp.store.conversations import Store

if TYPE_CHECKING:
    from pathlib import Path

    from chatapp.config import Settings
    from chatapp.store.importer import ImportReport


class ConversationLibrary:
    _store: Store
    settings: Settings

    def database_problems(self, limit: int = 5) -> list[str]:
        """What SQLite's quick check finds wrong with the database file; empty when it is sound."""
        return self._store.problems(limit)

    def store_failure(self, exc: BaseException) -> str | None:
        """The one line to show for an exception a read or a write of the store raised (a damaged page, a
        held lock, a full disk); None when `exc` is not a store failure."""
        from chatapp.store.db import failure_line

        return failure_line(self._store.path, exc, self.settings.lock_timeout)

    def all_messages(self, conversation_id: str) -> list[Message]:
        """Every message of every branch, oldest first (exports, tree views)."""
        return self._store.all_messages(conversation_id)

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """The newest messages containing every word of `text` (the last word as a prefix)."""
        from chatapp.store.search import search

        return search(self._store.connection, text, limit)

    def rename_conversation(self, conversation_id: str, title: str) -> bool:
        """The user's title; generated titles never replace it."""
        return self._store.rename(conversation_id, " ".join(title.split()))

    def delete_conversation(self, conversation_id: str) -> bool:
        """Gone from the file, the search index and the log (see Store.delete_conversation)."""
        return self._store.delete_conversation(conversation_id)

    # --- conversations -----------------------------------------------------------------------

    def conversations(self, limit: int | None = None) -> list[Conversation]:
        return self._store.list_conversations(limit)

    def conversation(self, id_or_prefix: str) -> Conversation | None:
        return self._store.find_conversation(id_or_prefix)

    def conversations_matching(self, id_or_prefix: str, limit: int = 10) -> list[Conversation]:
        """The conversation with this id, else those whose id starts with it (newest first)."""
        exact = self._store.get_conversation(id_or_prefix)
        if exact is not None:
            return [exact]
        return self._store.conversations_with_prefix(id_or_prefix, limit) if id_or_prefix else []

    def latest_conversation(self) -> Conversation | None:
        return self._store.latest_conversation()

    def messages(self, conversation_id: str) -> list[Message]:
        return self._store.messages(conversation_id)

    def recent_prompts(self, limit: int = 200) -> list[str]:
        """Earlier prompts, oldest first, for walking back with Up in the prompt."""
        return self._store.recent_prompts(limit)

    def message(self, message_id: str) -> Message | None:
        return self._store.get_message(message_id)

    def conversation_of_message(self, message_id: str) -> str:
        message = self._store.get_message(message_id)
        if message is None:
            raise KeyError(message_id)
        return message.conversation_id

    @staticmethod
    def new_conversation_id() -> str:
        """An id for a conversation about to be created (templates draw their A/B version from it)."""
        from chatapp.store.conversations import new_id

        return new_id()


    # --- branches (conversations are trees; see DESIGN.md) ------------------------------------

    def open_at(self, message_id: str) -> str | None:
        """Make the branch through a message current (e.g. a search hit on another branch); its conversation."""
        return self._store.show_branch(message_id)

    def siblings(self, message_id: str) -> list[Message]:
        """A message and its alternatives (regenerated replies, edited prompts), oldest first."""
        return self._store.siblings(message_id)

    def branch_counts(self, conversation_id: str) -> dict[str | None, int]:
        """{parent id: children} where a message has alternatives (None: alternative first prompts)."""
        return self._store.branch_counts(conversation_id)

    def step_sibling(self, message_id: str, step: int) -> Message | None:
        """Show the sibling `step` places away (the path then runs through it); None at either end."""
        siblings = self._store.siblings(message_id)
        index = next((i for i, m in enumerate(siblings) if m.id == message_id), None)
        if index is None or not 0 <= index + step < len(siblings):
            return None
        chosen = siblings[index + step]
        self._store.show_branch(chosen.id)
        return chosen

    def branch_from(self, conversation_id: str, message_id: str | None) -> None:
        """The next message goes below `message_id` (None: a new first prompt), beside its existing
        children: to regenerate a reply, branch from its prompt and send; nothing is overwritten."""
        self._store.set_current_leaf(conversation_id, message_id)

    def edit_message(self, message_id: str, text: str) -> Message:
        """An edited user message: a sibling of the original (which is kept), now on the current path."""
        original = self._store.get_message(message_id)
        if original is None:
            raise KeyError(message_id)
        return self._store.add_message(original.conversation_id, original.role, text, parent_id=original.parent_id)

    # --- moving conversations in and out -------------------------------------------------------

    def export_json(self, conversation_ids: list[str] | None = None) -> Iterator[str]:
        """chatapp's JSON export (schema in the README), in chunks; None exports every conversation."""
        from chatapp.store.export_format import json_chunks

        ids = conversation_ids if conversation_ids is not None else [c.id for c in self._store.list_conversations()]
        return json_chunks(self._store, ids)

    def export_markdown(self, conversation_id: str) -> str:
        from chatapp.store.export_format import markdown

        return markdown(self._store, conversation_id)

    def export_to_file(self, conversation_ids: list[str] | None, fmt: str, path: Path) -> None:
        """Write an export ("json" or "md", one conversation for md) to `path`, created 0600 whatever the
        umask: it holds the user's conversations. Raises OSError."""
        import os

        if fmt == "md":
            if not conversation_ids or len(conversation_ids) != 1:
                raise ValueError("Markdown exports one conversation")
            chunks: Iterator[str] = iter([self.export_markdown(conversation_ids[0])])
        else:
            chunks = self.export_json(conversation_ids)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(chunk)

    def import_file(self, path: Path) -> ImportReport:
        """Import chatapp or ChatGPT export; all or nothing. Raises ImportFileError (one line)."""
        from chatapp.store.importer import import_file

        return import_file(self._store, path)
