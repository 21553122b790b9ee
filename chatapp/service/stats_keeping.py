"""Engine statistics for ChatService: this run's figures merged with earlier runs' (kept in the store)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

from chatapp.config import Settings
from chatapp.store.conversations import Store

if TYPE_CHECKING:
    from chatapp.engine import EngineStats, RequestEngine, StatsSnapshot

_STATS_KEY = "engine_stats"


class StatsKeeping:
    settings: Settings
    _store: Store

    if TYPE_CHECKING:  # built on first use by ChatService
        @property
        def _engine(self) -> RequestEngine: ...

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

