"""The text of `chatapp templates show NAME`: plain text, control characters made visible.

Show it without markup (a template may contain `[/]`), e.g. `Static(text, markup=False)` / `print()`.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatapp.textsafe import visible

from .ab import ArmStats, format_arms
from .model import Template


def describe(template: Template, *, versions: Sequence[int] = (), stats: Sequence[ArmStats] = ()) -> str:
    """`versions`: every version of the template (from `library.versions(name)`), to list them;
    `stats`: per-version results, shown under the A/B split."""
    lines = [template.ref + (f" - {template.description}" if template.description else "")]
    source = "built-in" if template.builtin else str(template.path or "(in memory)")
    lines.append(f"role: {template.role.value}    source: {source}")
    if versions:
        listed = ", ".join(str(v) for v in sorted(versions))
        lines.append(f"versions: {listed} (default: {max(versions)}; pin one with {template.name}@N)")
    hints = [
        f"{key}={value}"
        for key, value in (
            ("provider", template.provider),
            ("model", template.model),
            ("temperature", template.temperature),
        )
        if value is not None
    ]
    if hints:
        lines.append("hints: " + " ".join(hints))
    if template.ab is not None:
        total = sum(template.ab.weights)
        arms = ", ".join(f"v{v} {w / total:.0%}" for v, w in template.ab.arms)
        lines.append(f"A/B split (new conversations): {arms}")
    if stats:
        lines.append(format_arms(stats))
    lines.append("")
    if template.variables:
        lines.append("variables:")
        width = max(len(v.name) for v in template.variables)
        for variable in template.variables:
            status = "required" if variable.required else f"default {variable.default!r}"
            parts = [f"  {variable.name:<{width}}  {status}"]
            if variable.choices:
                parts.append("one of " + ", ".join(repr(c) for c in variable.choices))
            if variable.description:
                parts.append(variable.description)
            lines.append(" - ".join(parts))
    else:
        lines.append("variables: none")
    lines.append("")
    lines.append("text:")
    lines.extend(("  " + line).rstrip() for line in template.text.splitlines())
    return visible("\n".join(lines))
