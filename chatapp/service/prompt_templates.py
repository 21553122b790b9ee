"""Prompt templates for ChatService: render, record on a conversation, the persona (a system template)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from chatapp.config import Settings
from chatapp.domain import MetaKey, Role
from chatapp.store.conversations import Store

if TYPE_CHECKING:
    from chatapp.templates import ArmStats, Assignment, RenderedPrompt, TemplateLibrary


class PromptTemplates:
    settings: Settings
    _store: Store
    _templates: TemplateLibrary | None

    @property
    def templates(self) -> TemplateLibrary:
        """The prompt template library (built-ins + the user's folder), read on first use."""
        if self._templates is None:
            from chatapp.templates import TemplateLibrary

            self._templates = TemplateLibrary.from_paths(self.settings.paths)
        return self._templates

    def render_template(self, ref: str, variables: Mapping[str, str],
                        conversation_id: str) -> tuple[RenderedPrompt, Assignment]:
        """Pick the version (pinned, A/B or latest) and render it; raises TemplateError before any request."""
        template, assignment = self.templates.resolve_for(ref, conversation_id)
        return self.templates.render(template, variables), assignment

    def template_stdin_variable(self, ref: str) -> str | None:
        """The variable a template fills from piped input (`stdin = "text"` in its file), if it names one."""
        return self.templates.get(ref).stdin

    def apply_template(self, conversation_id: str, prompt: RenderedPrompt, assignment: Assignment) -> None:
        """Record the template on the conversation. A system-role template becomes its system prompt (a
        persona); a user-role one is recorded beside it, so filling a prompt never replaces the persona."""
        if prompt.role is Role.SYSTEM:
            keys = (MetaKey.TEMPLATE, MetaKey.TEMPLATE_ASSIGNMENT, MetaKey.TEMPLATE_FROM_SEQ)
        else:
            keys = (MetaKey.USER_TEMPLATE, MetaKey.USER_TEMPLATE_ASSIGNMENT, MetaKey.USER_TEMPLATE_FROM_SEQ)
        values = (prompt.to_dict(), assignment.to_dict(), self._store.next_seq(conversation_id))
        self._store.update_meta(conversation_id, **dict(zip(keys, values, strict=True)))

    def persona(self, conversation_id: str | None) -> str | None:
        """The persona (system template) of a conversation as `name@version`, or None."""
        conversation = self._store.get_conversation(conversation_id) if conversation_id else None
        recorded = conversation.meta.get(MetaKey.TEMPLATE) if conversation else None
        if isinstance(recorded, dict) and recorded.get("role") == Role.SYSTEM.value:
            return f"{recorded.get('name')}@{recorded.get('version')}"
        return None

    def clear_persona(self, conversation_id: str) -> None:
        """Drop the conversation's persona: later turns go without its system prompt (results stop counting)."""
        self._store.update_meta(conversation_id, **dict.fromkeys(
            (MetaKey.TEMPLATE, MetaKey.TEMPLATE_ASSIGNMENT, MetaKey.TEMPLATE_FROM_SEQ)))

    def template_results(self, name: str) -> list[ArmStats]:
        from chatapp.templates import ArmStats

        return [ArmStats(*row) for row in self._store.template_results(name)]

    def system_prompt(self, conversation_id: str) -> str | None:
        conversation = self._store.get_conversation(conversation_id)
        recorded = conversation.meta.get(MetaKey.TEMPLATE) if conversation else None
        if isinstance(recorded, dict) and recorded.get("role") == Role.SYSTEM.value:
            return str(recorded.get("text") or "") or None
        return None
