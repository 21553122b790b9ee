"""The values of the template library: templates, their variables and A/B splits, and the records a
conversation keeps (a rendered prompt, a version assignment), which round-trip through plain dicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chatapp.domain import Role

from .errors import TemplateError

TEMPLATE_ROLES = (Role.SYSTEM, Role.USER)


@dataclass(frozen=True, slots=True)
class Variable:
    """A declared variable. `default is None` means required."""

    name: str
    default: str | None = None
    description: str = ""
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True, slots=True)
class ABSplit:
    """`[ab] versions = [1, 2]`, `weights = [1, 3]`: share of new conversations per version."""

    arms: tuple[tuple[int, float], ...]  # (version, weight), weight >= 0, total > 0

    @property
    def versions(self) -> tuple[int, ...]:
        return tuple(version for version, _ in self.arms)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(weight for _, weight in self.arms)

    def share(self, version: int) -> float:
        total = sum(self.weights)
        return sum(w for v, w in self.arms if v == version) / total


@dataclass(frozen=True, slots=True)
class Template:
    """One version of one template, as loaded from a TOML file."""

    name: str
    version: int
    role: Role
    text: str
    description: str = ""
    variables: tuple[Variable, ...] = ()
    provider: str | None = None  # hints only; the caller decides whether to follow them
    model: str | None = None
    temperature: float | None = None
    ab: ABSplit | None = None  # honoured on the latest version of a template
    stdin: str | None = None  # the variable `chatapp ask` fills from piped input
    path: Path | None = None
    builtin: bool = False

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variables if v.required)

    def variable(self, name: str) -> Variable | None:
        for variable in self.variables:
            if variable.name == name:
                return variable
        return None


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """A prompt ready to send, and what the conversation records about it."""

    role: Role
    text: str
    name: str
    version: int
    variables: Mapping[str, str] = field(default_factory=dict, hash=False)  # every value used

    def __post_init__(self) -> None:
        object.__setattr__(self, "variables", MappingProxyType(dict(self.variables)))

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role.value,
            "text": self.text,
            "name": self.name,
            "version": self.version,
            "variables": dict(self.variables),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RenderedPrompt:
        role = _field(data, "role", str, "rendered prompt")
        if role not in {r.value for r in TEMPLATE_ROLES}:
            raise TemplateError(f"stored rendered prompt: role must be system or user (got {role!r})")
        variables = data.get("variables", {})
        if not isinstance(variables, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise TemplateError("stored rendered prompt: variables must map names to strings")
        return cls(
            role=Role(role),
            text=_field(data, "text", str, "rendered prompt"),
            name=_field(data, "name", str, "rendered prompt"),
            version=_field(data, "version", int, "rendered prompt"),
            variables=variables,
        )


class AssignmentReason(StrEnum):
    AB = "ab"  # drawn from the template's A/B split
    LATEST = "latest"  # no split: the latest version
    PINNED = "pinned"  # the caller asked for name@N


@dataclass(frozen=True, slots=True)
class Assignment:
    """Which version a conversation got, and why. Record it once; reuse it for later turns."""

    conversation_id: str
    name: str
    version: int
    reason: AssignmentReason
    split: tuple[tuple[int, float], ...] = ()  # the (version, weight) arms when reason is AB

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "name": self.name,
            "version": self.version,
            "reason": self.reason.value,
            "split": [[version, weight] for version, weight in self.split],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assignment:
        reason = _field(data, "reason", str, "assignment")
        try:
            parsed_reason = AssignmentReason(reason)
        except ValueError:
            raise TemplateError(f"stored assignment: unknown reason {reason!r}") from None
        split = data.get("split", [])
        try:
            arms = tuple((int(v), float(w)) for v, w in split)
        except (TypeError, ValueError):
            raise TemplateError("stored assignment: split must be a list of [version, weight]") from None
        return cls(
            conversation_id=_field(data, "conversation_id", str, "assignment"),
            name=_field(data, "name", str, "assignment"),
            version=_field(data, "version", int, "assignment"),
            reason=parsed_reason,
            split=arms,
        )


def _field(data: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TemplateError(f"stored {what}: {key!r} must be a {kind.__name__} (got {value!r})")
    return value
