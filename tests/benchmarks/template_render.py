"""Benchmark: rendering a template with 1,000 placeholders (90 characters each), the size of a long persona.

Prints the median time per render over 7 rounds of 50 renders. Run: python tests/benchmarks/template_render.py
"""

from __future__ import annotations

import statistics
import time

from chatapp.domain import Role
from chatapp.templates import Template, Variable, render

ROUNDS = 7
RENDERS = 50


def main() -> None:
    template = Template(name="t", version=1, role=Role.SYSTEM, text="{{a}} " * 1000, variables=(Variable("a"),))
    values = {"a": "x" * 90}
    per_render = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(RENDERS):
            render(template, values)
        per_render.append((time.perf_counter() - start) / RENDERS)
    print(f"render, 1,000 placeholders: median {statistics.median(per_render) * 1e3:.2f} ms "
          f"(min {min(per_render) * 1e3:.2f}, max {max(per_render) * 1e3:.2f}) over {ROUNDS}x{RENDERS}")


if __name__ == "__main__":
    main()
