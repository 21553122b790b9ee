"""Validation and the restricted renderer."""

from __future__ import annotations

import json

import pytest

from chatapp.domain import Role
from chatapp.templates import (
    InvalidVariable,
    LeftoverPlaceholder,
    MalformedPlaceholder,
    MissingVariable,
    PromptTooLarge,
    Template,
    TemplateError,
    TemplateParseError,
    UnknownVariable,
    Variable,
    check_variables,
    parse_text,
    render,
)
from chatapp.templates.render import placeholders, segments

TUTOR = parse_text(
    'name = "tutor"\nversion = 2\ntext = "You are a patient tutor of {{topic}}. Answer at {{ level }} level."\n'
    '[variables.topic]\nrequired = true\n[variables.level]\ndefault = "beginner"\n'
)


def make(text: str, *variables: Variable) -> Template:
    return Template(name="t", version=1, role=Role.SYSTEM, text=text, variables=variables)


def test_render_with_defaults_and_whitespace_in_braces():
    prompt = render(TUTOR, {"topic": "chess"})
    assert prompt.text == "You are a patient tutor of chess. Answer at beginner level."
    assert prompt.role is Role.SYSTEM
    assert (prompt.name, prompt.version, prompt.ref) == ("tutor", 2, "tutor@2")
    assert dict(prompt.variables) == {"topic": "chess", "level": "beginner"}  # defaults recorded too


def test_given_value_overrides_default():
    assert render(TUTOR, {"topic": "go", "level": "expert"}).text.endswith("at expert level.")


def test_missing_variable_is_named():
    with pytest.raises(MissingVariable) as info:
        render(TUTOR, {})
    assert info.value.name == "topic"
    assert str(info.value) == "missing required variable 'topic' for template tutor@2"


def test_all_missing_variables_are_named():
    t = make("{{a}}{{b}}", Variable("a"), Variable("b"))
    with pytest.raises(MissingVariable, match="variables 'a', 'b'") as info:
        check_variables(t, {})
    assert info.value.names == ("a", "b")


def test_blank_value_for_required_variable_is_missing():
    with pytest.raises(MissingVariable, match="'topic'"):
        render(TUTOR, {"topic": "  "})


def test_empty_value_for_optional_variable_is_allowed():
    assert render(TUTOR, {"topic": "x", "level": ""}).text.endswith("Answer at  level.")


def test_unknown_variable_is_named_with_a_suggestion():
    with pytest.raises(UnknownVariable) as info:
        render(TUTOR, {"topc": "chess"})
    assert info.value.name == "topc"
    assert "unknown variable 'topc' for template tutor@2" in str(info.value)
    assert "did you mean 'topic'?" in str(info.value)


def test_unknown_variable_lists_what_the_template_takes():
    with pytest.raises(UnknownVariable, match="it takes: 'topic', 'level'"):
        render(TUTOR, {"zzz": "1", "topic": "x"})


def test_choices_are_enforced():
    t = make("{{tone}}", Variable("tone", default="calm", choices=("calm", "loud")))
    assert render(t, {"tone": "loud"}).text == "loud"
    with pytest.raises(InvalidVariable, match="must be one of 'calm', 'loud' \\(got 'angry'\\)"):
        render(t, {"tone": "angry"})


def test_non_string_value_is_rejected():
    with pytest.raises(InvalidVariable, match="must be a string"):
        render(TUTOR, {"topic": 3})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "text",
    [
        "{{topic.__class__}}",
        "{{ topic.__class__.__mro__ }}",
        "{{topic[0]}}",
        "{{topic!r}}",
        "{{topic:>10}}",
        "{{ __import__('os') }}",
        "{{0}}",
        "{{}}",
        "{{{topic}}}",
        "unclosed {{topic",
    ],
)
def test_no_attribute_access_or_expressions(text):
    with pytest.raises(MalformedPlaceholder):
        segments(text)
    with pytest.raises(TemplateParseError, match="malformed placeholder"):
        parse_text(f'name = "x"\ntext = {json.dumps(text)}\n[variables.topic]\n')


def test_malformed_placeholder_in_code_built_template_is_an_error_at_render():
    with pytest.raises(TemplateError, match=r"t@1: malformed placeholder '\{\{x.y\}\}' at line 2, column 3"):
        render(make("a\nb {{x.y}}", Variable("x", default="")), {})


def test_single_braces_and_format_fields_are_literal():
    t = make("{topic} {topic.__class__} {0} {{topic}}", Variable("topic"))
    assert render(t, {"topic": "X"}).text == "{topic} {topic.__class__} {0} X"


def test_values_are_not_expanded_again():
    t = make("A {{a}} B {{b}}", Variable("a"), Variable("b"))
    out = render(t, {"a": "{{b}}", "b": "{a.__class__} {{{{a}}}}"})
    assert out.text == "A {{b}} B {a.__class__} {{{{a}}}}"


def test_escapes_write_literal_braces():
    t = make("{{{{name}}}} is written as {{{{ {{name}} }}}}; lone }} stays", Variable("name"))
    assert render(t, {"name": "x"}).text == "{{name}} is written as {{ x }}; lone }} stays"
    assert placeholders(t.text) == ("name",)


def test_leftover_placeholder_is_reported():
    # parse_text rejects undeclared placeholders; a Template built in code can still have one.
    t = make("Hello {{who}} and {{other}}", Variable("who"))
    with pytest.raises(LeftoverPlaceholder, match="'other'"):
        render(t, {"who": "you"})


def test_size_limit_names_sizes_and_largest_variable():
    t = make("{{small}} {{big}}", Variable("small"), Variable("big"))
    assert len(render(t, {"small": "s", "big": "b" * 50}, max_chars=52).text) == 52
    with pytest.raises(PromptTooLarge) as info:
        render(t, {"small": "s", "big": "b" * 200_000})
    assert info.value.size == 200_002
    assert str(info.value) == (
        "rendered prompt for template t@1 is 200,002 characters (limit 100,000); the largest variable is 'big'"
    )


def test_a_thousand_placeholders_are_each_substituted_once():
    """Timing lives in tests/benchmarks/template_render.py; this checks the result of the same render."""
    t = make("{{a}} " * 1000, Variable("a"))
    text = render(t, {"a": "x" * 90}).text
    assert text.split() == ["x" * 90] * 1000
