"""TemplateLibrary: built-in templates plus the user's, read on first use.

Built-ins live in `chatapp/templates/builtin/`; the user's in `Paths.templates_dir` (any `*.toml` below
it, dot-files and dot-dirs skipped), one file per template version. A user file with the same name and
version as a built-in replaces it. A file that cannot be used is recorded in `problems` and skipped;
two user files with the same name and version: the first by path wins, the second is a problem.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from . import ab
from .args import parse_ref
from .errors import TemplateError, TemplateParseError, UnknownTemplate, UnknownVersion
from .model import Assignment, AssignmentReason, RenderedPrompt, Template
from .parse import MAX_FILE_BYTES, load_file
from .render import MAX_PROMPT_CHARS, render

if TYPE_CHECKING:
    from chatapp.config import Paths

BUILTIN_DIR = Path(__file__).parent / "builtin"
SUMMARIZER = "summarizer"  # a built-in persona; compression has its own prompt (context.summarize)

TemplateList = list[Template]


class Problem(NamedTuple):
    """A template file that was skipped, and why."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class Resolved(NamedTuple):
    template: Template
    assignment: Assignment


class TemplateLibrary:
    def __init__(
        self,
        user_dir: Path | None = None,
        *,
        builtin_dir: Path | None = BUILTIN_DIR,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self.user_dir = user_dir
        self.builtin_dir = builtin_dir
        self.max_file_bytes = max_file_bytes
        self._lock = threading.Lock()
        self._index: dict[str, dict[int, Template]] | None = None
        self._problems: list[Problem] = []

    @classmethod
    def from_paths(cls, paths: Paths) -> TemplateLibrary:
        return cls(paths.templates_dir)

    # --- loading ------------------------------------------------------------------------

    def reload(self) -> None:
        """Forget what was read; the next call reads the directories again."""
        with self._lock:
            self._index = None
            self._problems = []

    def _loaded(self) -> dict[str, dict[int, Template]]:
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    self._index, self._problems = self._load()
                index = self._index
        return index

    def _load(self) -> tuple[dict[str, dict[int, Template]], list[Problem]]:
        problems: list[Problem] = []
        index: dict[str, dict[int, Template]] = {}
        origin: dict[tuple[str, int], Path] = {}
        for directory, builtin in ((self.builtin_dir, True), (self.user_dir, False)):
            if directory is None:
                continue
            seen: dict[tuple[str, int], Path] = {}
            for path in _template_files(directory, problems):
                try:
                    template = load_file(path, builtin=builtin, max_bytes=self.max_file_bytes)
                except TemplateParseError as exc:
                    problems.append(Problem(path, exc.detail))
                    continue
                except (TemplateError, ValueError, RecursionError) as exc:
                    problems.append(Problem(path, str(exc)))  # not expected; still never fatal
                    continue
                key = (template.name, template.version)
                if key in seen:
                    problems.append(
                        Problem(path, f"duplicate of {template.ref} already defined in {seen[key]}; skipped")
                    )
                    continue
                seen[key] = origin[key] = path
                index.setdefault(template.name, {})[template.version] = template
        for name, versions in index.items():
            latest = versions[max(versions)]
            if latest.ab is not None:
                missing = [v for v in latest.ab.versions if v not in versions]
                if missing:
                    listed = ", ".join(str(v) for v in missing)
                    problems.append(
                        Problem(
                            origin[(name, latest.version)],
                            f"ab: {name} has no version {listed}; the split is ignored",
                        )
                    )
                    versions[latest.version] = replace(latest, ab=None)
        return index, problems

    @property
    def problems(self) -> tuple[Problem, ...]:
        self._loaded()
        return tuple(self._problems)

    # --- lookup -------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._loaded())

    def versions(self, name: str) -> TemplateList:
        """Every version of a template, oldest first."""
        versions = self._versions_of(name)
        return [versions[v] for v in sorted(versions)]

    def _versions_of(self, name: str) -> dict[int, Template]:
        index = self._loaded()
        if name not in index:
            raise UnknownTemplate(name, index)
        return index[name]

    def get(self, name: str, version: int | None = None) -> Template:
        """A template by name (or `name@N` ref); the latest version unless one is given."""
        if "@" in name:
            name, pinned = parse_ref(name)
            if version is not None and pinned is not None and pinned != version:
                raise TemplateError(f"template reference {name}@{pinned} conflicts with version {version}")
            version = pinned if version is None else version
        versions = self._versions_of(name)
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise UnknownVersion(name, version, versions)
        return versions[version]

    def resolve_for(self, name: str, conversation_id: str) -> Resolved:
        """The version a conversation uses: `name@N` (or `name@latest`) pinned; else the split declared
        by the latest version (stable per conversation); else the latest. Store `assignment.to_dict()`
        with the conversation and reuse it (`get(a.name, a.version)`) for its later turns."""
        base, pinned = parse_ref(name)
        if pinned is None and name.strip().endswith("@latest"):
            pinned = self.get(base).version  # asked for the latest explicitly: no A/B draw
        if pinned is not None:
            template = self.get(base, pinned)
            return Resolved(template, Assignment(conversation_id, base, pinned, AssignmentReason.PINNED))
        latest = self.get(base)
        if latest.ab is None:
            return Resolved(latest, Assignment(conversation_id, base, latest.version, AssignmentReason.LATEST))
        version = ab.choose(latest.ab, base, conversation_id)
        assignment = Assignment(conversation_id, base, version, AssignmentReason.AB, latest.ab.arms)
        return Resolved(self.get(base, version), assignment)

    def render(
        self,
        template: Template | str,
        variables: Mapping[str, str],
        *,
        max_chars: int = MAX_PROMPT_CHARS,
    ) -> RenderedPrompt:
        """Render a Template, or the template a `name` / `name@N` reference names."""
        if isinstance(template, str):
            template = self.get(template)
        return render(template, variables, max_chars=max_chars)

    def __iter__(self) -> Iterator[Template]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._loaded())

    def list(self, *, all_versions: bool = False) -> TemplateList:
        """The latest version of every template by name (or every version, with `all_versions`)."""
        index = self._loaded()
        out: TemplateList = []
        for name in sorted(index):
            versions = index[name]
            if all_versions:
                out.extend(versions[v] for v in sorted(versions))
            else:
                out.append(versions[max(versions)])
        return out


def _template_files(directory: Path, problems: list[Problem]) -> list[Path]:
    if not directory.exists():
        return []
    if not directory.is_dir():
        problems.append(Problem(directory, "is not a directory; no templates read from it"))
        return []
    try:
        found = [
            path
            for path in directory.rglob("*.toml")
            if not any(part.startswith(".") for part in path.relative_to(directory).parts) and path.is_file()
        ]
    except OSError as exc:
        problems.append(Problem(directory, f"cannot list: {exc.strerror or exc}"))
        return []
    return sorted(found)
