"""Per-provider stats as rows of text, shared by `chatapp stats` and the TUI stats screen."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a cheap import for the TUI: the engine loads with the first turn, not with this table
    from chatapp.engine import Percentiles, StatsSnapshot

HEADERS = ("provider", "model", "breaker", "requests", "ok", "failed", "retries", "fallbacks",
           "ttft p50/p95/p99", "latency p50/p95/p99", "tokens in/out", "cost", "rate")


def milliseconds(seconds: float | None, *, unit: bool = True) -> str:
    """Seconds as whole milliseconds ("12 ms"), or "–" when there is no figure."""
    if seconds is None:
        return "–"
    return f"{seconds * 1000:.0f} ms" if unit else f"{seconds * 1000:.0f}"


def _percentiles(p: Percentiles) -> str:
    if not p.count:
        return "–"
    return "/".join(milliseconds(v, unit=False) for v in (p.p50, p.p95, p.p99)) + " ms"


def rows(snapshot: StatsSnapshot) -> list[tuple[str, ...]]:
    table: list[tuple[str, ...]] = []
    for p in snapshot.providers:
        cost = "–" if p.cost_usd is None else f"${p.cost_usd:.4f}"
        rate = "–"
        if p.rpm_limit or p.tpm_limit or (p.rate_factor is not None and p.rate_factor < 1):
            parts = []
            if p.rpm_limit:
                parts.append(f"{p.rpm_limit:.0f} rpm")
            if p.tpm_limit:
                parts.append(f"{p.tpm_limit:.0f} tpm")
            if p.rate_factor is not None and p.rate_factor < 1:
                parts.append(f"×{p.rate_factor:.2f}")
            rate = " ".join(parts)
        table.append((
            p.name, p.model or "–", p.breaker_state or "–", str(p.requests), str(p.successes), str(p.failures),
            str(p.retries), str(p.fallbacks), _percentiles(p.time_to_first_token), _percentiles(p.latency),
            f"{p.input_tokens:,}/{p.output_tokens:,}", cost, rate,
        ))
    return table


def as_text(snapshot: StatsSnapshot) -> str:
    body = rows(snapshot)
    if not body:
        return "no requests recorded yet"
    widths = [max(len(r[i]) for r in [HEADERS, *body]) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in [HEADERS, *body]]
    total = snapshot.total_cost_usd
    if total is not None:
        lines.append(f"total cost: ${total:.4f}")
    return "\n".join(lines)
