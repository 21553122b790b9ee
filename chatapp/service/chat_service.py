"""ChatService: the one facade the TUI and the CLI use. It owns the store, the providers and a turn's life.

A turn: the user message is committed before any network call; the reply is written to the store while
it streams (flushed at least every FLUSH_SECONDS) and ends with a final status, whatever happens.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING

from chatapp import model_facts
from chatapp.config import ProviderSpec, Settings
from chatapp.domain import (
    Conversation,
    Message,
    MetaKey,
    ModelLoad,
    ProviderKind,
    Role,
    Target,
    TextDelta,
    TurnEvent,
    TurnFinished,
)
from chatapp.providers.registry import Availability, ProviderPool
from chatapp.service.library import ConversationLibrary
from chatapp.store.conversations import Store
from chatapp.store.db import DataDirReadOnly

if TYPE_CHECKING:
    from chatapp.engine import EngineStats, RequestEngine, StatsSnapshot
    from chatapp.providers.hub import Progress
    from chatapp.providers.local_catalogue import LocalModel
    from chatapp.pulled_index import PulledModel
    from chatapp.service.batch import BatchRun
    from chatapp.service.batch_desk import BatchPlan
    from chatapp.service.batch_estimate import BatchEstimate
    from chatapp.service.batch_remote import RemoteBatchRun
    from chatapp.service.context_keeper import ContextKeeper, Gauge
    from chatapp.service.model_catalog import ModelCatalog, ProviderEntry
    from chatapp.service.probe import ProbeResult
    from chatapp.service.titles import TitleMaker
    from chatapp.store.batch_jobs import BatchJobs, JobRecord
    from chatapp.store.context_records import SummaryRow
    from chatapp.templates import ArmStats, Assignment, RenderedPrompt, TemplateLibrary

_STATS_KEY = "engine_stats"
_THEME_KEY = "theme"


class ChatService(ConversationLibrary):
    def __init__(self, settings: Settings, store: Store, pool: ProviderPool | None = None) -> None:
        self.settings = settings
        self._store = store
        self._pool = pool or ProviderPool(settings)
        self._secrets = self._collect_secrets()
        self._closed = False
        self._templates: TemplateLibrary | None = None
        self._learned_windows: dict[tuple[str, str], int | None] = {}
        self._hinted: set[str] = set()  # providers whose setup hint was given this run
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
            self._save_stats()
        await self._pool.aclose()
        if "_batch_jobs" in loaded:
            self._batch_jobs.close()
        self._store.close()

    def notices(self) -> list[str]:
        """Things to tell the user once, from loading the config and opening the store (a key in a file
        others can read, modes tightened, a damaged database set aside)."""
        return [*self.settings.warnings, *self._store.notices]

    # --- stats -------------------------------------------------------------------------------

    def _persisted_stats(self) -> EngineStats:
        from chatapp.engine import EngineStats

        raw = self._store.get_value(_STATS_KEY)
        try:
            return EngineStats.from_dict(json.loads(raw)) if raw else EngineStats()
        except (ValueError, KeyError, TypeError):
            return EngineStats()

    def stats(self, *, include_history: bool = True) -> StatsSnapshot:
        """Per-provider figures: this run's live state, plus earlier runs' counts when asked."""
        from chatapp.engine import StatsSnapshot

        if not include_history:
            return self._engine.stats.snapshot()
        combined = self._persisted_stats()
        combined.merge(self._engine.stats)
        live = self._engine.stats.snapshot()
        merged = combined.snapshot()
        return StatsSnapshot(
            providers=tuple(
                replace(p, breaker_state=self._engine.breaker_state(p.name)) if p.name in self.settings.providers
                else p for p in merged.providers
            ),
            scheduler=live.scheduler,
        )

    def _save_stats(self) -> None:
        if not self._engine.stats.snapshot().providers or self._store.read_only:  # nothing ran, or cannot save
            return
        combined = self._persisted_stats()
        combined.merge(self._engine.stats)
        self._store.set_value(_STATS_KEY, json.dumps(combined.to_dict()))

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

    # --- providers ---------------------------------------------------------------------------

    def providers(self) -> list[Availability]:
        return self._pool.all()

    @property
    def default_provider(self) -> str | None:
        return self.settings.default_provider

    def target_for(self, conversation_id: str | None, provider: str | None = None,
                   model: str | None = None) -> Target:
        """Explicit choice, else the conversation's last provider, else the default."""
        conversation = self._store.get_conversation(conversation_id) if conversation_id else None
        if provider is None and conversation is not None and conversation.provider in self.settings.providers:
            provider = conversation.provider
            model = model or conversation.model
        spec = self.settings.provider(provider)
        return Target(spec.name, model or spec.model)

    def _spec(self, target: Target) -> ProviderSpec:
        """The provider's settings for `target`, with the window its server reported, once learned."""
        spec = self.settings.provider(target.provider).with_model(target.model)
        window = self._learned_windows.get((spec.name, spec.model))
        return replace(spec, context_window=window) if window and spec.context_window is None else spec

    async def _learned_spec(self, target: Target) -> ProviderSpec:
        """`_spec`, first asking an OpenAI-compatible server for the window of a model the table does not know
        (llama.cpp `/props`, vLLM `/v1/models`, Ollama `/api/show`); once per provider and model per run."""
        spec = self.settings.provider(target.provider).with_model(target.model)
        key = (spec.name, spec.model)
        if (key not in self._learned_windows and spec.context_window is None and spec.kind is ProviderKind.OPENAI
                and spec.base_url and not model_facts.lookup(spec.model).known):
            from chatapp.providers.window_discovery import discover_context_window

            self._learned_windows[key] = await discover_context_window(
                spec.base_url, spec.model, spec.resolve_api_key(self.settings.environ))
        return self._spec(target)

    def window_hint(self, name: str) -> str | None:
        """What to set when the provider's model window is a guess (for `doctor`); None when it is known."""
        from chatapp.context.window import model_limits

        return model_limits(self._spec(self.target_for(None, name))).hint

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

    def start_provider(self, name: str) -> None:
        """Begin loading a local model in the background (call it after the first paint)."""
        self._pool.start(name)

    def breaker_state(self, name: str) -> str:
        """A provider's circuit breaker: closed, open, half_open or disabled (a rejected key)."""
        return self._engine.breaker_state(name)

    def provider_availability(self, name: str) -> Availability:
        return self._pool.availability(name)

    async def probe(self, name: str) -> ProbeResult:
        """A tiny timed request to one provider (loads a local model first); raises ProviderError."""
        from chatapp.service.probe import probe

        return await probe(self._pool, self.settings.provider(name))

    def provider_loading(self, name: str) -> ModelLoad | None:
        """A started local model's load: loading, ready (with its time) or failed (with why)."""
        return self._pool.loading_state(name)

    def is_local(self, name: str) -> bool:
        """The provider runs a model in-process (it loads after the first paint, and may fail to)."""
        return self.settings.provider(name).kind is ProviderKind.LLAMACPP

    def warm_provider(self, name: str | None = None) -> None:
        """Import the SDK a provider needs. Blocking: call it from a worker thread after first paint."""
        module = self._pool.sdk_module(name or self.default_provider or "")
        if module:
            __import__(module)

    # --- local models (`chatapp models`, the model picker) -------------------------------------

    def local_models(self) -> list[LocalModel]:
        """Every local GGUF chatapp knows: packaged, pulled, configured; header facts and providers."""
        from chatapp.providers.local_catalogue import local_models

        return local_models(self.settings)

    def pull_model(self, ref: str, *, file: str | None = None, progress: Progress | None = None,
                   save: bool = False) -> PulledModel:
        """Download a GGUF from the Hub (blocking; raises PullError with one line). Offered as a provider
        from the next start; `save` also writes its [providers.NAME] block to the config file."""
        from chatapp.providers.hub import pull, save_to_config

        model = pull(self.settings.paths, ref, file=file, progress=progress)
        if save:
            save_to_config(self.settings.source or self.settings.paths.config_file, model)
        return model

    def local_default_note(self) -> str | None:
        """When chatapp chose a local model by itself (no key, no default in the config): which one, and how
        to get a better one. None when the user chose, or the default is not local."""
        name = self.settings.default_provider
        spec = self.settings.providers.get(name) if name else None
        if spec is None or spec.kind is not ProviderKind.LLAMACPP or self.settings.default_explicit:
            return None
        from chatapp.pulled_index import ALIASES, load_index

        pull = f"chatapp models pull {ALIASES[1].name} (or any owner/repo with GGUF files; `chatapp models` lists them)"
        if spec.model_path is None:
            return ("Talking to the packaged demo model, Gemma 3 270M: a tiny base model that continues text and "
                    f"knows little. For a real assistant that still runs offline: {pull}")
        pulled = next((m for m in load_index(self.settings.paths) if m.path == spec.model_path), None)
        if pulled is None:  # a GGUF of the user's own config
            return None
        kind = "an instruction-tuned model" if pulled.has_chat_template else "a base model (it continues text)"
        return f"Talking to {spec.name}, pulled from {pulled.repo}: {kind}, run locally. Another one: {pull}"

    def pulled_model(self, name: str) -> PulledModel:
        """A pulled model by name; raises PullError naming the pulled ones."""
        from chatapp.providers.hub import find_pulled

        return find_pulled(self.settings.paths, name)

    def remove_pulled_model(self, name: str) -> PulledModel:
        """Delete a pulled model's file and forget it; raises PullError with one line."""
        from chatapp.providers.hub import remove

        return remove(self.settings.paths, name)

    def forget_saved_model(self, model: PulledModel) -> str | None:
        """After `remove_pulled_model`: take out the config block `models pull --save` wrote for the model
        (left there, it would stay the default provider with its file gone). The line to tell the user:
        what was removed, or why the block stays; None when there was none. Raises PullError (one line)."""
        from chatapp.providers.saved_block import forget_saved_block

        block = forget_saved_block(self.settings.source or self.settings.paths.config_file, model)
        if block is None:
            return None
        if block.removed:
            return f"removed {block.header} from {block.config_file}"
        return (f"{block.config_file} still has {block.header}, naming the removed file ({block.reason}): "
                "delete that block or point its model_path at another GGUF")

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

    def new_conversation(self, provider: str | None = None, model: str | None = None, *,
                         conversation_id: str | None = None) -> Conversation:
        target = self.target_for(None, provider, model)
        return self._store.create_conversation(target.provider, target.model, conversation_id=conversation_id)

    # --- templates ---------------------------------------------------------------------------

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

    def first_hint(self, provider: str) -> bool:
        """True the first time this run a setup hint for `provider` is due (each is given once)."""
        if provider in self._hinted:
            return False
        self._hinted.add(provider)
        return True

    def next_available_provider(self, current: str | None) -> Target | None:
        """The provider after `current` in config order that can take a turn now (wrapping), at its default
        model; None when no other provider is available."""
        names = list(self.settings.providers)
        if not names:
            return None
        start = names.index(current) + 1 if current in names else 0
        for name in names[start:] + names[:start]:
            if name != current and self.catalog.entry(name).usable:
                return Target(name, self.settings.provider(name).model)
        return None

    # --- models and providers for the picker -------------------------------------------------

    def model_entries(self) -> list[ProviderEntry]:
        """Every provider with its state and the models it listed (cached; see `refresh_models`)."""
        return self.catalog.entries()

    def refresh_models(self, *, force: bool = False) -> None:
        """Fetch missing or stale model listings in the background (needs a running event loop)."""
        self.catalog.refresh(force=force)

    async def wait_models(self) -> None:
        await self.catalog.wait()

    async def discover_servers(self) -> list[str]:
        """Probe the configured loopback ports once; the names of the servers found (now providers)."""
        return [server.name for server in await self.catalog.discover()]

    def reenable_provider(self, name: str) -> None:
        """Put a provider that was disabled (a refused key) or resting (breaker) back in service."""
        if "engine" in self.__dict__:
            self._engine.reset_provider(name)

    def _breaker(self, name: str) -> tuple[str, str | None]:
        if "engine" not in self.__dict__:  # no request ran yet: nothing can have tripped
            return "closed", None
        return self._engine.breaker_state(name), self._engine.breaker_reason(name)

    def chain(self, first: str, *, explicit: bool = False) -> tuple[str, ...]:
        """The provider and then its fallbacks, in the configured order; only the provider itself when the
        user chose it explicitly, unless the config consents to falling back from an explicit choice."""
        if explicit and not self.settings.fallback_on_explicit:
            return (first,)
        return (first, *(name for name in self.settings.fallback if name != first))

    def system_prompt(self, conversation_id: str) -> str | None:
        conversation = self._store.get_conversation(conversation_id)
        recorded = conversation.meta.get(MetaKey.TEMPLATE) if conversation else None
        if isinstance(recorded, dict) and recorded.get("role") == Role.SYSTEM.value:
            return str(recorded.get("text") or "") or None
        return None

    # --- batch jobs ---------------------------------------------------------------------------

    @cached_property
    def _batch_jobs(self) -> BatchJobs:
        from chatapp.store.batch_jobs import BatchJobs

        return BatchJobs.open(self.settings.paths.batch_database)

    def estimate_batch(self, plan: BatchPlan) -> BatchEstimate:
        """Tokens, cost and time of a batch before it starts; raises InputError/TemplateError/ConfigError."""
        from chatapp.service.batch_desk import estimate_plan

        return estimate_plan(self.settings, plan, self.templates)

    def start_batch(self, plan: BatchPlan, total: int) -> BatchRun | RemoteBatchRun:
        """Record a new job and return its run (call before any turn: the plan's limits shape the engine)."""
        from chatapp.service.batch_desk import create_job

        return self._batch_run(create_job(self._batch_jobs, plan, total))

    def resume_batch(self, job_id: str) -> BatchRun | RemoteBatchRun:
        """A stopped or killed job's run; raises KeyError for an unknown id, RuntimeError for a live one."""
        job = self._batch_jobs.job(job_id)
        if job is None:
            raise KeyError(job_id)
        if job.alive:
            raise RuntimeError(f"batch {job.id} is still running (pid {job.pid})")
        return self._batch_run(job)

    def _batch_run(self, job: JobRecord) -> BatchRun | RemoteBatchRun:
        from chatapp.service.batch_desk import BatchPlan, open_run, with_batch_spec

        if "engine" not in self.__dict__:  # the job's concurrency and limits shape this process's engine
            self.settings = with_batch_spec(self.settings, BatchPlan.from_options(job.options))
        return open_run(job, settings=self.settings, jobs=self._batch_jobs, templates=self.templates,
                        engine=lambda: self._engine, redact=self.redact)

    def batch_job(self, job_id: str) -> JobRecord | None:
        return self._batch_jobs.job(job_id)

    def batch_jobs(self, limit: int = 20) -> list[JobRecord]:
        return self._batch_jobs.jobs(limit)

    def running_batches(self) -> list[str]:
        """One line per batch job running in any process (the stats screen shows them); never creates the DB."""
        if not self.settings.paths.batch_database.exists():
            return []
        from chatapp.service.batch_desk import running_line

        return [running_line(job) for job in self._batch_jobs.running_jobs()]

    # --- secrets -----------------------------------------------------------------------------

    def _collect_secrets(self) -> tuple[str, ...]:
        keys = {spec.resolve_api_key(self.settings.environ) for spec in self.settings.providers.values()}
        return tuple(sorted((k for k in keys if k and len(k) >= 6), key=len, reverse=True))

    def redact(self, text: str) -> str:
        """Secrets never reach the store, exports or logs: every error text passes through here."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text
