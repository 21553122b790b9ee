"""What the conversation records, `--var` parsing, and `templates show` text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chatapp.domain import Role
from chatapp.templates import (
    ABSplit,
    ArmStats,
    Assignment,
    AssignmentReason,
    RenderedPrompt,
    Template,
    TemplateError,
    TemplateLibrary,
    Variable,
    VariableArgError,
    describe,
    parse_ref,
    parse_var_args,
    render,
)


def test_rendered_prompt_round_trips_through_json():
    library = TemplateLibrary(None)
    prompt = library.render("translator", {"language": "German", "text": "hi"})
    data = json.loads(json.dumps(prompt.to_dict()))
    assert data == {
        "role": "user",
        "text": prompt.text,
        "name": "translator",
        "version": 1,
        "variables": {"language": "German", "text": "hi"},
    }
    assert RenderedPrompt.from_dict(data) == prompt


def test_rendered_prompt_is_immutable_and_hashable():
    prompt = RenderedPrompt(Role.SYSTEM, "t", "n", 1, {"a": "b"})
    with pytest.raises(TypeError):
        prompt.variables["a"] = "c"  # type: ignore[index]
    assert hash(prompt) == hash(RenderedPrompt(Role.SYSTEM, "t", "n", 1, {"a": "x"}))


@pytest.mark.parametrize(
    "data",
    [
        {"role": "assistant", "text": "t", "name": "n", "version": 1},
        {"role": "user", "text": "t", "name": "n", "version": "1"},
        {"role": "user", "text": "t", "name": "n", "version": 1, "variables": {"a": 1}},
        {"role": "user", "name": "n", "version": 1},
    ],
)
def test_bad_stored_prompt_is_a_template_error(data):
    with pytest.raises(TemplateError, match="stored rendered prompt"):
        RenderedPrompt.from_dict(data)


def test_assignment_round_trips_through_json():
    assignment = Assignment("conv", "tutor", 2, AssignmentReason.AB, ((1, 1.0), (2, 3.0)))
    data = json.loads(json.dumps(assignment.to_dict()))
    assert data["reason"] == "ab" and data["split"] == [[1, 1.0], [2, 3.0]]
    assert Assignment.from_dict(data) == assignment
    plain = Assignment("c", "t", 1, AssignmentReason.LATEST)
    assert Assignment.from_dict(plain.to_dict()) == plain
    assert plain.ref == "t@1"


def test_bad_stored_assignment_is_a_template_error():
    with pytest.raises(TemplateError, match="unknown reason"):
        Assignment.from_dict({"conversation_id": "c", "name": "t", "version": 1, "reason": "coin"})
    with pytest.raises(TemplateError, match="split"):
        Assignment.from_dict({"conversation_id": "c", "name": "t", "version": 1, "reason": "ab", "split": [1, 2]})


def test_parse_var_args():
    assert parse_var_args(["topic=chess", " level =a=b", "empty="]) == {
        "topic": "chess",
        "level": "a=b",
        "empty": "",
    }
    assert parse_var_args([]) == {}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["topic"], "--var expects key=value (got 'topic')"),
        (["=x"], "expects key=value"),
        (["a.b=1"], "'a.b' is not a variable name"),
        (["1a=1"], "not a variable name"),
        (["a=1", "a=2"], "'a' is given twice"),
    ],
)
def test_parse_var_args_errors(args, fragment):
    with pytest.raises(VariableArgError) as info:
        parse_var_args(args)
    assert fragment in str(info.value)


def test_parse_ref():
    assert parse_ref("tutor") == ("tutor", None)
    assert parse_ref("tutor@2") == ("tutor", 2)
    assert parse_ref("tutor@latest") == ("tutor", None)
    for bad in ("tutor@two", "tutor@0", "tutor@-1", "tutor@²", "@1"):
        with pytest.raises(TemplateError):
            parse_ref(bad)


def test_describe_shows_everything_the_show_command_needs():
    template = Template(
        name="tutor",
        version=2,
        role=Role.SYSTEM,
        text="Teach {{topic}} at {{level}} level.\n\x1b]52;c;evil\x07",
        description="A patient tutor",
        variables=(
            Variable("topic", description="subject"),
            Variable("level", default="beginner", choices=("beginner", "expert")),
        ),
        provider="anthropic",
        model="claude-sonnet-4-5",
        ab=ABSplit(((1, 1.0), (2, 3.0))),
    )
    text = describe(template, versions=[1, 2], stats=[ArmStats(1, 10, 40, 0, 4000), ArmStats(2, 30, 90)])
    assert text.startswith("tutor@2 - A patient tutor\nrole: system    source: (in memory)\n")
    assert "versions: 1, 2 (default: 2; pin one with tutor@N)" in text
    assert "hints: provider=anthropic model=claude-sonnet-4-5" in text
    assert "A/B split (new conversations): v1 25%, v2 75%" in text
    assert "  topic  required - subject" in text
    assert "  level  default 'beginner' - one of 'beginner', 'expert'" in text
    assert "  Teach {{topic}} at {{level}} level." in text
    assert "\x1b" not in text and "\x07" not in text  # control characters made visible
    assert "100.0" in text  # 4000 output tokens / 40 turns


def test_describe_builtin():
    library = TemplateLibrary(None)
    text = describe(library.get("summarizer"), versions=[t.version for t in library.versions("summarizer")])
    assert "source: built-in" in text and "variables: none" in text


def test_arm_stats_ratios():
    arm = ArmStats(version=1, conversations=4, turns=10, input_tokens=5, output_tokens=250)
    assert (arm.turns_per_conversation, arm.output_tokens_per_turn) == (2.5, 25)
    assert ArmStats(2).output_tokens_per_turn == 0.0


def test_render_result_records_the_template():
    t = Template(name="n", version=3, role=Role.USER, text="{{a}}", variables=(Variable("a"),))
    assert render(t, {"a": "x"}).to_dict()["version"] == 3


def test_import_is_light_and_reads_no_files():
    code = (
        "import sys; import chatapp.templates as t; "
        "lib = t.TemplateLibrary(None); "
        "assert lib._index is None; "
        "bad = [m for m in ('textual', 'openai', 'anthropic', 'httpx', 'sqlite3', 'tiktoken') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
