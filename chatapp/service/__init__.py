"""The service tier: `ChatService` is the one door for the CLI and the TUI (DESIGN.md).

The front ends may import only this package (an import-linter contract in pyproject says so), so the value
types and errors they handle from lower layers are re-exported here. Those load on first use, not with
this package: the engine and the templates are not on the way to the TUI's first paint.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chatapp.domain import Target
from chatapp.service.chat_service import ChatService
from chatapp.store.context_records import SummaryRow

if TYPE_CHECKING:
    from chatapp.engine import Percentiles, SchedulerSnapshot, StatsSnapshot
    from chatapp.providers.embedded_model import EmbeddedModelInfo, embedded_model_info
    from chatapp.providers.local_catalogue import LocalModel
    from chatapp.store.db import (
        LOCK_TIMEOUT_SECONDS,
        SALVAGE_ADVICE,
        StoreError,
        describe_failure,
        is_damage,
        set_aside,
    )
    from chatapp.store.salvage import SalvageReport, salvage
    from chatapp.templates import (
        Assignment,
        Problem,
        RenderedPrompt,
        Template,
        TemplateError,
        describe,
        parse_var_args,
    )

_REEXPORTED = {
    "Percentiles": "chatapp.engine",
    "SchedulerSnapshot": "chatapp.engine",
    "StatsSnapshot": "chatapp.engine",
    "EmbeddedModelInfo": "chatapp.providers.embedded_model",
    "embedded_model_info": "chatapp.providers.embedded_model",
    "LocalModel": "chatapp.providers.local_catalogue",
    "StoreError": "chatapp.store.db",
    "SALVAGE_ADVICE": "chatapp.store.db",
    "LOCK_TIMEOUT_SECONDS": "chatapp.store.db",
    "describe_failure": "chatapp.store.db",
    "is_damage": "chatapp.store.db",
    "set_aside": "chatapp.store.db",
    "SalvageReport": "chatapp.store.salvage",
    "salvage": "chatapp.store.salvage",
    "Assignment": "chatapp.templates",
    "Problem": "chatapp.templates",
    "RenderedPrompt": "chatapp.templates",
    "Template": "chatapp.templates",
    "TemplateError": "chatapp.templates",
    "describe": "chatapp.templates",
    "parse_var_args": "chatapp.templates",
}


def __getattr__(name: str) -> Any:
    module = _REEXPORTED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "LOCK_TIMEOUT_SECONDS",
    "SALVAGE_ADVICE",
    "Assignment",
    "ChatService",
    "EmbeddedModelInfo",
    "LocalModel",
    "Percentiles",
    "Problem",
    "RenderedPrompt",
    "SalvageReport",
    "SchedulerSnapshot",
    "StatsSnapshot",
    "StoreError",
    "SummaryRow",
    "Target",
    "Template",
    "TemplateError",
    "describe",
    "describe_failure",
    "embedded_model_info",
    "is_damage",
    "parse_var_args",
    "salvage",
    "set_aside",
]
