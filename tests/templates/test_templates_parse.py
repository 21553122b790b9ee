"""Parsing template TOML: good files, malformed files, missing keys, wrong types, unknown roles."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatapp.domain import Role
from chatapp.templates import ABSplit, TemplateParseError, load_file, parse_text

TUTOR = """\
name = "tutor"
version = 2
role = "system"
description = "A patient tutor"
text = "You are a patient tutor of {{topic}}. Answer at {{level}} level."
[variables.topic]
required = true
[variables.level]
default = "beginner"
"""


def test_issue_example_parses():
    t = parse_text(TUTOR)
    assert (t.name, t.version, t.role, t.description) == ("tutor", 2, Role.SYSTEM, "A patient tutor")
    assert t.ref == "tutor@2"
    assert t.required == ("topic",)
    assert t.variable("level").default == "beginner"
    assert not t.variable("level").required
    assert t.ab is None and t.provider is None


def test_optional_keys_hints_choices_and_ab():
    t = parse_text(
        'name = "x"\nrole = "user"\nprovider = "anthropic"\nmodel = "claude"\ntemperature = 0.5\n'
        'text = """\n  {{ tone }} please\n"""\n'
        '[variables.tone]\ndefault = "calm"\nchoices = ["calm", "loud"]\ndescription = "voice"\n'
        "[ab]\nversions = [1, 2]\nweights = [1, 3]\n"
    )
    assert t.version == 1  # default
    assert t.role is Role.USER
    assert (t.provider, t.model, t.temperature) == ("anthropic", "claude", 0.5)
    assert t.text == "{{ tone }} please"  # surrounding whitespace stripped
    assert t.variable("tone").choices == ("calm", "loud")
    assert t.ab == ABSplit(((1, 1.0), (2, 3.0)))
    assert t.ab.share(2) == 0.75


def test_required_false_without_default_means_empty_default():
    t = parse_text('name = "x"\ntext = "a{{b}}"\n[variables.b]\nrequired = false\n')
    assert t.variable("b").default == ""


def test_variable_table_without_keys_is_required():
    t = parse_text('name = "x"\ntext = "a{{b}}"\n[variables.b]\n')
    assert t.required == ("b",)


def test_no_variables_is_fine():
    assert parse_text('name = "x"\ntext = "plain"').variables == ()


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ('version = 1\ntext = "t"', "name: required"),
        ('name = "x"', "text: required"),
        ('name = "x"\ntext = "   "', "text: must be a non-empty string"),
        ('name = "x"\ntext = 3', "text: must be a non-empty string"),
        ('name = 3\ntext = "t"', "name: must be"),
        ('name = "a b"\ntext = "t"', "name: must be"),
        ('name = "a@1"\ntext = "t"', "name: must be"),
        ('name = "x"\nversion = "2"\ntext = "t"', "version: must be a whole number"),
        ('name = "x"\nversion = 0\ntext = "t"', "version: must be a whole number"),
        ('name = "x"\nversion = true\ntext = "t"', "version: must be a whole number"),
        ('name = "x"\nrole = "assistant"\ntext = "t"', 'role: must be "system" or "user"'),
        ('name = "x"\nrole = 1\ntext = "t"', "role: must be"),
        ('name = "x"\ndescription = 1\ntext = "t"', "description: must be a string"),
        ('name = "x"\ntemperature = 5\ntext = "t"', "temperature: must be a number from 0 to 2"),
        ('name = "x"\ntext = "t"\ntxet = "t"', "txet: unknown key (did you mean 'text'?)"),
        ('name = "x"\ntext = "t"\nvariables = 3', "variables: must be a table"),
        ('name = "x"\ntext = "{{a}}"\n[variables]\na = "d"', "variables.a: must be a table"),
        ('name = "x"\ntext = "{{a}}"\n[variables.a]\nrequired = "yes"', "variables.a.required: must be true"),
        ('name = "x"\ntext = "{{a}}"\n[variables.a]\ndefault = 3', "variables.a.default: must be a string"),
        (
            'name = "x"\ntext = "{{a}}"\n[variables.a]\nrequired = true\ndefault = "d"',
            "a required variable cannot have a default",
        ),
        ('name = "x"\ntext = "{{a}}"\n[variables.a]\ndefualt = "d"', "did you mean 'default'?"),
        ('name = "x"\ntext = "{{a}}"\n[variables.a]\nchoices = "d"', "choices: must be a list of strings"),
        (
            'name = "x"\ntext = "{{a}}"\n[variables.a]\ndefault = "z"\nchoices = ["y"]',
            "'z' is not one of the choices",
        ),
        ('name = "x"\ntext = "t"\n[variables."9a"]', "variable names are letters"),
        ('name = "x"\ntext = "{{topc}}"\n[variables.topic]', "undeclared variable(s) 'topc' (did you mean"),
        ('name = "x"\ntext = "{{a}}"\n[variables.a]\n[variables.b]', "declared but not used in text: 'b'"),
        ('name = "x"\ntext = "{{ a.__class__ }}"\n[variables.a]', "malformed placeholder"),
        ('name = "x"\ntext = "{{a"\n[variables.a]', "malformed placeholder"),
        ('name = "x"\ntext = "t"\nab = 1', "ab: must be a table"),
        ('name = "x"\ntext = "t"\n[ab]\nversions = []', "ab.versions: must be a non-empty list"),
        ('name = "x"\ntext = "t"\n[ab]\nversions = [1, 1]', "ab.versions: lists a version more than once"),
        ('name = "x"\ntext = "t"\n[ab]\nversions = [1, 2]\nweights = [1]', "ab.weights: must be 2 numbers"),
        ('name = "x"\ntext = "t"\n[ab]\nversions = [1, 2]\nweights = [0, 0]', "at least one weight"),
        ('name = "x"\ntext = "t"\n[ab]\nversions = [1]\nsplit = 1', "ab.split: unknown key"),
        ('name = "x"\ntext = = "t"', "line 2: Invalid value"),  # TOML syntax error
    ],
)
def test_malformed_templates_are_rejected_with_the_key(source, fragment):
    with pytest.raises(TemplateParseError) as info:
        parse_text(source)
    assert fragment in str(info.value)


def test_error_names_file_and_line(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\ntext = "t"\nrole = "assistant"\n', encoding="utf-8")
    with pytest.raises(TemplateParseError) as info:
        load_file(path)
    assert info.value.path == path
    assert info.value.line == 3
    assert str(info.value).startswith(f"{path}: line 3: role:")


def test_line_of_a_variable_key(tmp_path: Path):
    source = 'name = "x"\ntext = "{{a}}"\n\n[variables.a]\nrequired = 1\n'
    with pytest.raises(TemplateParseError) as info:
        parse_text(source)
    assert info.value.line == 5


def test_not_utf8_and_too_large(tmp_path: Path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "caf\xe9"\ntext = "t"\n'.encode("latin-1"))
    with pytest.raises(TemplateParseError, match="not UTF-8"):
        load_file(bad)
    big = tmp_path / "big.toml"
    big.write_text('name = "x"\ntext = "' + "a" * 2000 + '"\n', encoding="utf-8")
    with pytest.raises(TemplateParseError, match="limit 1,000"):
        load_file(big, max_bytes=1000)


def test_load_file_records_path_and_builtin(tmp_path: Path):
    path = tmp_path / "tutor.toml"
    path.write_text(TUTOR, encoding="utf-8")
    t = load_file(path, builtin=True)
    assert t.path == path and t.builtin
