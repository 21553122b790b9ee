"""The prompt template library: TOML files, a restricted `{{name}}` renderer, versions and A/B splits.

```python
library = TemplateLibrary.from_paths(settings.paths)  # reads nothing yet
template, assignment = library.resolve_for("tutor", conversation_id)
prompt = library.render(template, parse_var_args(["topic=chess"]))
prompt.role, prompt.text, prompt.to_dict(), assignment.to_dict()
```
"""

from __future__ import annotations

from .ab import ArmStats, bucket, choose, format_arms
from .args import parse_ref, parse_var_args
from .describe import describe
from .errors import (
    InvalidVariable,
    LeftoverPlaceholder,
    MalformedPlaceholder,
    MissingVariable,
    PromptTooLarge,
    TemplateError,
    TemplateParseError,
    UnknownTemplate,
    UnknownVariable,
    UnknownVersion,
    VariableArgError,
    VariableError,
)
from .library import BUILTIN_DIR, SUMMARIZER, Problem, Resolved, TemplateLibrary
from .model import ABSplit, Assignment, AssignmentReason, RenderedPrompt, Template, Variable
from .parse import load_file, parse_text
from .render import MAX_PROMPT_CHARS, check_variables, render

__all__ = [
    "BUILTIN_DIR",
    "MAX_PROMPT_CHARS",
    "SUMMARIZER",
    "ABSplit",
    "ArmStats",
    "Assignment",
    "AssignmentReason",
    "InvalidVariable",
    "LeftoverPlaceholder",
    "MalformedPlaceholder",
    "MissingVariable",
    "Problem",
    "PromptTooLarge",
    "RenderedPrompt",
    "Resolved",
    "Template",
    "TemplateError",
    "TemplateLibrary",
    "TemplateParseError",
    "UnknownTemplate",
    "UnknownVariable",
    "UnknownVersion",
    "Variable",
    "VariableArgError",
    "VariableError",
    "bucket",
    "check_variables",
    "choose",
    "describe",
    "format_arms",
    "load_file",
    "parse_ref",
    "parse_text",
    "parse_var_args",
    "render",
]
