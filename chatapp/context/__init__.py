"""Token counting, context window building and compression (summaries of old turns).

Pure logic over plain records: nothing here touches the store, the network (except the guarded
background download in encodings.py) or the UI, and tiktoken is imported only when an encoding loads.

    counter = TokenCounter()                  # usable at once (estimates), exact after warm()
    counter.warm([spec.model])                # daemon thread; never blocks
    builder = WindowBuilder(counter)
    built = builder.build(spec, messages, system=prompt, summaries=summaries, counts=cached_counts)
    plan = plan_compression(spec, messages, counter, summaries=summaries, compress_at=0.75)
    run = await run_plan(plan, summarize, counter.counting(model, kind), cache=cache)
"""

from chatapp.context.compression import CompressionPlan, plan_compression
from chatapp.context.encodings import EncodingResolver, EncodingState, use_cache_dir
from chatapp.context.records import ContextMessage, HistoryMessage, Summary
from chatapp.context.summarize import (
    SUMMARY_PROMPT,
    MemorySummaryCache,
    SummaryCache,
    SummaryRun,
    chunk_tokens_for,
    run_plan,
    summary_key,
)
from chatapp.context.tokens import (
    ESTIMATE,
    Calibration,
    Counting,
    TokenCount,
    TokenCounter,
    estimate_tokens,
)
from chatapp.context.truncate import split_to_tokens, truncate_to_tokens
from chatapp.context.window import (
    Budget,
    BuiltContext,
    ContextError,
    MessageTooLarge,
    NothingToSend,
    SystemPromptTooLarge,
    WindowBuilder,
    model_limits,
    plan_budget,
)

__all__ = [
    "ESTIMATE",
    "SUMMARY_PROMPT",
    "Budget",
    "BuiltContext",
    "Calibration",
    "CompressionPlan",
    "ContextError",
    "ContextMessage",
    "Counting",
    "EncodingResolver",
    "EncodingState",
    "HistoryMessage",
    "MemorySummaryCache",
    "MessageTooLarge",
    "NothingToSend",
    "Summary",
    "SummaryCache",
    "SummaryRun",
    "SystemPromptTooLarge",
    "TokenCount",
    "TokenCounter",
    "WindowBuilder",
    "chunk_tokens_for",
    "estimate_tokens",
    "model_limits",
    "plan_budget",
    "plan_compression",
    "run_plan",
    "split_to_tokens",
    "summary_key",
    "truncate_to_tokens",
    "use_cache_dir",
]
