"""ChatService: the one facade the TUI and the CLI use. It owns the store, the providers and a turn's life.

A turn: the user message is committed before any network call; the reply is written to the store while
it streams (flushed at least every FLUSH_SECONDS) and ends with a final status, whatever happens.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from functools import cached_property
from typing import TYPE_CHECKING

from chatapp.config import Settings
from chatapp.domain import Conversation, Role, Target, TextDelta, TurnEvent, TurnFinished
from chatapp.providers.registry import ProviderPool
from chatapp.service.batch_jobs_desk import BatchJobsDesk
from chatapp.service.late_saves import LateSaves
from chatapp.service.library import ConversationLibrary
from chatapp.service.local_models import LocalModels
from chatapp.service.prompt_templates import PromptTemplates
from chatapp.service.provider_choice import ProviderChoice
from chatapp.service.stats_keeping import StatsKeeping
from chatapp.store.conversations import Store
from chatapp.store.db import DataDirReadOnly

if TYPE_CHECKING:
    from chatapp.engine import RequestEngine
    from chatapp.service.context_keeper import ContextKeeper, Gauge
    from chatapp.service.model_catalog import ModelCatalog
    from chatapp.service.titles import TitleMaker
    from chatapp.store.context_records import SummaryRow
    from chatapp.templates import TemplateLibrary

_THEME_KEY = "theme"


class ChatService(ConversationLibrary, ProviderChoice, LocalModels, PromptTemplates, BatchJobsDesk, StatsKeeping):
    """The facade: it builds the parts and runs a turn; each base class holds one group of its methods."""

    def __init__(self, settings: Settings, store: Store, pool: ProviderPool | None = None) -> None:
        self.settings = settings
        self._store = store
        self._pool = pool or ProviderPool(settings)
        self._secrets = self._collect_secrets()
        self._closed = False
        self._templates: TemplateLibrary | None = None
        self._learned_windows: dict[tuple[str, str], int | None] = {}
        self._hinted: set[str] = set()  # providers whose setup hint was given this run
        self._late_saves = LateSaves()  # cancelled replies whose final write waits for another process's lock
        self._unsaved: list[str] = []
        self._store.close_streaming()

    @classmethod
    def open(cls, settings: Settings, *, to_read: bool = False) -> ChatService:
        """`to_read`: the caller only reads, and may go on when the data dir cannot be written (said once, as
        a notice); any other caller stops there with that one line (DataDirReadOnly)."""
        store = Store.open(settings.paths.database, settings.lock_timeout)
        if store.read_only is not None:
            if not to_read:
                store.close()
                raise DataDirReadOnly(store.read_only)
            store.notices.append(store.read_only)
        return cls(settings, store)

    # The engine, the context keeper and the title maker load on first use (a turn, a gauge): ~70 ms of
    # imports that would otherwise sit in front of the TUI's first paint.

    @cached_property
    def _engine(self) -> RequestEngine:
        from chatapp.engine import EngineOptions, RequestEngine

        # The global cap must not undercut a provider's own limit (a batch may ask for 32 at once).
        widest = max((spec.max_concurrency for spec in self.settings.providers.values()), default=0)
        return RequestEngine(self.settings, self._pool.get,
                             options=EngineOptions(global_concurrency=max(EngineOptions.global_concurrency, widest)))

    @cached_property
    def _context(self) -> ContextKeeper:
        from chatapp.service.context_keeper import ContextKeeper

        return ContextKeeper(self.settings, self._store, self._engine)

    @cached_property
    def _titles(self) -> TitleMaker:
        from chatapp.service.titles import TitleMaker

        return TitleMaker(self.settings, self._store, self._engine)

    @cached_property
    def catalog(self) -> ModelCatalog:
        from chatapp.service.model_catalog import ModelCatalog

        return ModelCatalog(self.settings, self._pool, self._breaker, self.redact)

    def close(self) -> None:
        """Close a service that ran no turn (`ls`, `stats`, `templates`): only the store is open."""
        self._closed = True
        self._store.close()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        loaded = self.__dict__
        if "_context" in loaded:
            await self._context.aclose()
        if "_titles" in loaded:
            await self._titles.aclose()
        if "_engine" in loaded:
            await self._engine.aclose()
        self._unsaved = await self._late_saves.drain(self.settings.lock_timeout)
        if "_engine" in loaded and not self._unsaved:  # (with the lock still held, the stats would wait again)
            self._save_stats()
        await self._pool.aclose()
        if "_batch_jobs" in loaded:
            self._batch_jobs.close()
        self._store.close()

    def unsaved_replies(self) -> list[str]:
        """After `aclose`: one line for each cancelled reply whose final save was given up because another
        process held the write lock past `lock_timeout`."""
        return list(self._unsaved)

    def notices(self) -> list[str]:
        """Things to tell the user once, from loading the config and opening the store (a key in a file
        others can read, modes tightened, a damaged database set aside)."""
        return [*self.settings.warnings, *self._store.notices]

    # --- preferences -------------------------------------------------------------------------

    def chosen_theme(self) -> str | None:
        """The theme last picked in the app, unless the config's `theme` changed since: then the config's."""
        try:
            saved = json.loads(self._store.get_value(_THEME_KEY) or "{}")
        except ValueError:
            saved = {}
        if isinstance(saved, dict) and saved.get("config") == self.settings.theme and saved.get("name"):
            return str(saved["name"])
        return self.settings.theme

    def remember_theme(self, name: str) -> None:
        self._store.set_value(_THEME_KEY, json.dumps({"name": name, "config": self.settings.theme}))

    # --- the context window ------------------------------------------------------------------

    def warm(self) -> None:
        """Start loading token encodings in the background (never blocks)."""
        self._context.warm()

    async def gauge(self, conversation_id: str | None, provider: str | None = None,
                    model: str | None = None) -> Gauge:
        """Window usage for the next turn to this conversation (exact or approximate)."""
        target = self.target_for(conversation_id, provider, model)
        spec = await self._learned_spec(target)
        return await self._context.gauge(conversation_id, spec, self.system_prompt(conversation_id) if conversation_id
                                  else None)

    async def compress_now(self, conversation_id: str) -> bool:
        """Summarize all but the newest turns now; True when a summary was made."""
        target = self.target_for(conversation_id)
        spec = await self._learned_spec(target)
        return await self._context.compress(conversation_id, spec, self.system_prompt(conversation_id),
                                           force=True) is not None

    def truncate_to_fit(self, text: str, limit: int, provider: str | None = None, model: str | None = None) -> str:
        """`text` cut to `limit` tokens (head and tail kept) for the user's choice to truncate."""
        target = self.target_for(None, provider, model)
        return self._context.truncate(text, self._spec(target), limit)

    def summaries(self, conversation_id: str) -> list[SummaryRow]:
        return self._context.records.summaries(conversation_id)

    async def finish_background(self) -> None:
        """Wait for this process's background work (summaries, titles); the CLI calls it before exiting."""
        await self._context.drain()
        if "_titles" in self.__dict__:
            await self._titles.drain()

    def new_conversation(self, provider: str | None = None, model: str | None = None, *,
                         conversation_id: str | None = None) -> Conversation:
        target = self.target_for(None, provider, model)
        return self._store.create_conversation(target.provider, target.model, conversation_id=conversation_id)

    # --- a turn and the actions on its messages ------------------------------------------------

    async def send(
        self, conversation_id: str | None, text: str, *, provider: str | None = None, model: str | None = None,
        title: bool = False, explicit: bool = False,
    ) -> AsyncGenerator[TurnEvent, None]:
        """Run one turn and yield its events. Cancel the consuming task to cancel the turn.

        `explicit`: the user named this provider (a flag, the picker, the switch key); it is not replaced by
        a fallback without their consent (`fallback_on_explicit = true` in the config).
        `title`: after the first reply of an untitled conversation, name it in a background job.
        """
        from chatapp.store.interactive_marks import InteractiveMarks

        target = self.target_for(conversation_id, provider, model)
        # Batch runs in other processes start nothing new on this provider until the reply starts.
        with InteractiveMarks(self.settings.paths.interactive_marks_dir).hold(target.provider) as waiting:
            async with aclosing(self._send(conversation_id, text, target, title=title, explicit=explicit)) as events:
                async for event in events:
                    if isinstance(event, TextDelta | TurnFinished):
                        waiting.release()
                    yield event

    async def _send(self, conversation_id: str | None, text: str, target: Target, *,
                    title: bool, explicit: bool) -> AsyncGenerator[TurnEvent, None]:
        if conversation_id is None:
            conversation_id = self._store.create_conversation(target.provider, target.model).id
        else:
            self._store.set_provider(conversation_id, target.provider, target.model)
        user = self._store.add_message(conversation_id, Role.USER, text)
        from chatapp.service.turn import reply_to

        async with aclosing(reply_to(self, conversation_id, user.id, target, title=title,
                                     explicit=explicit)) as events:
            async for event in events:
                yield event

    def regenerate(self, conversation_id: str, *, provider: str | None = None,
                   model: str | None = None) -> AsyncIterator[TurnEvent]:
        """A new reply to the last user message, from this or another provider; the replies it replaces stay
        stored as a branch. Raises ValueError when there is no user message to answer."""
        from chatapp.service.message_actions import regenerate

        return regenerate(self, conversation_id, self.target_for(conversation_id, provider, model))

    def edit_and_resend(self, conversation_id: str, message_id: str, text: str, *, provider: str | None = None,
                        model: str | None = None) -> AsyncIterator[TurnEvent]:
        """Replace an earlier user message by `text` and answer it; the old message and the turns after it
        stay stored as a branch. Raises ValueError for a message that is not a user message on the path."""
        from chatapp.service.message_actions import edit_and_resend

        return edit_and_resend(self, conversation_id, message_id, text, provider=provider, model=model)

    def continue_reply(self, conversation_id: str, message_id: str, *, provider: str | None = None,
                       model: str | None = None) -> AsyncIterator[TurnEvent]:
        """Ask for the rest of a reply that stopped at the length limit and append it to the same message.
        Raises ValueError unless `message_id` is the conversation's last reply and was truncated."""
        from chatapp.service.message_actions import continue_reply

        return continue_reply(self, conversation_id, message_id, self.target_for(conversation_id, provider, model))

    # --- secrets -----------------------------------------------------------------------------

    def _collect_secrets(self) -> tuple[str, ...]:
        keys = {spec.resolve_api_key(self.settings.environ) for spec in self.settings.providers.values()}
        return tuple(sorted((k for k in keys if k and len(k) >= 6), key=len, reverse=True))

    def redact(self, text: str) -> str:
        """Secrets never reach the store, exports or logs: every error text passes through here."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
