"""TemplateLibrary: built-ins + user dir, versions, pinning, A/B, problems."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from chatapp.config import Paths
from chatapp.domain import Role
from chatapp.templates import (
    SUMMARIZER,
    AssignmentReason,
    TemplateError,
    TemplateLibrary,
    UnknownTemplate,
    UnknownVersion,
    bucket,
)


def tutor(version: int, extra: str = "", text: str = "v{{topic}}") -> str:
    return f'name = "tutor"\nversion = {version}\ntext = "{text}{version}"\n[variables.topic]\nrequired = true\n{extra}'


def write(directory: Path, filename: str, content: str) -> Path:
    path = directory / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "templates"
    directory.mkdir()
    return directory


def only_user(user_dir: Path) -> TemplateLibrary:
    return TemplateLibrary(user_dir, builtin_dir=None)


# --- built-ins ----------------------------------------------------------------------------


def test_builtins_all_load_without_problems():
    library = TemplateLibrary(None)
    assert library.problems == ()
    assert {"concise", "code-reviewer", "translator", SUMMARIZER} <= set(library.names())
    assert all(t.builtin for t in library.list(all_versions=True))


def test_builtins_all_render_with_their_defaults_and_required_vars():
    library = TemplateLibrary(None)
    for template in library.list(all_versions=True):
        prompt = library.render(template, {name: f"<{name}>" for name in template.required})
        assert prompt.text and "{{" not in prompt.text, template.ref
        for name in template.required:
            assert f"<{name}>" in prompt.text


def test_builtin_roles_and_variables():
    library = TemplateLibrary(None)
    assert library.get("code-reviewer").role is Role.SYSTEM
    translator = library.get("translator")
    assert translator.role is Role.USER
    assert set(translator.required) == {"language", "text"}
    prompt = library.render("translator", {"language": "French", "text": "Good morning"})
    assert "French" in prompt.text and "Good morning" in prompt.text


def test_summarizer_persona_asks_for_a_faithful_summary():
    library = TemplateLibrary(None)
    summary = library.get(SUMMARIZER)
    assert summary.role is Role.SYSTEM and summary.required == ()
    text = library.render(summary, {}).text.lower()
    for phrase in ("fact", "decision", "name", "number", "open questions", "third person", "invent"):
        assert phrase in text, phrase


# --- loading and problems -----------------------------------------------------------------


def test_nothing_is_read_until_first_use(user_dir: Path):
    library = only_user(user_dir)
    write(user_dir, "t1.toml", tutor(1))  # written after construction, still seen
    assert library.names() == ["tutor"]


def test_missing_user_dir_is_not_a_problem(tmp_path: Path):
    library = TemplateLibrary(tmp_path / "nope")
    assert library.problems == ()
    assert "concise" in library.names()


def test_user_dir_that_is_a_file_is_reported(tmp_path: Path):
    path = write(tmp_path, "templates", "")
    library = TemplateLibrary(path, builtin_dir=None)
    assert [p.path for p in library.problems] == [path]


def test_malformed_user_files_are_reported_and_skipped(user_dir: Path):
    write(user_dir, "good.toml", tutor(1))
    bad_toml = write(user_dir, "bad.toml", 'name = "x"\ntext = = 1\n')
    bad_role = write(user_dir, "role.toml", 'name = "y"\nrole = "assistant"\ntext = "t"\n')
    write(user_dir, "notes.txt", "ignored")
    write(user_dir, ".hidden/z.toml", "garbage = = =")
    library = only_user(user_dir)
    assert library.names() == ["tutor"]
    problems = {p.path: p.message for p in library.problems}
    assert set(problems) == {bad_toml, bad_role}
    assert problems[bad_toml].startswith("line 2: ")
    assert problems[bad_role] == 'line 2: role: must be "system" or "user" (got \'assistant\')'
    assert str(library.problems[0]).startswith(str(library.problems[0].path) + ": ")
    assert tuple(library.problems[0]) == (bad_toml, problems[bad_toml])  # a (path, message) pair


def test_duplicate_name_and_version_in_user_dir_is_reported(user_dir: Path):
    first = write(user_dir, "a/tutor.toml", tutor(1, text="first{{topic}}"))
    second = write(user_dir, "b/tutor.toml", tutor(1, text="second{{topic}}"))
    library = only_user(user_dir)
    assert library.get("tutor").path == first
    (problem,) = library.problems
    assert problem.path == second
    assert problem.message == f"duplicate of tutor@1 already defined in {first}; skipped"


def test_user_template_overrides_builtin_of_same_name_and_version(user_dir: Path):
    write(user_dir, "concise.toml", 'name = "concise"\nversion = 1\ntext = "mine"\n')
    library = TemplateLibrary(user_dir)
    assert library.problems == ()
    assert library.get("concise").text == "mine"
    assert not library.get("concise").builtin


def test_user_dir_extends_builtins_with_new_names_and_versions(user_dir: Path):
    write(user_dir, "concise2.toml", 'name = "concise"\nversion = 2\ntext = "newer"\n')
    write(user_dir, "tutor.toml", tutor(1))
    library = TemplateLibrary(user_dir)
    assert [t.version for t in library.versions("concise")] == [1, 2]
    assert library.get("concise").text == "newer"
    assert library.get("concise@1").builtin
    assert "tutor" in library.names() and "translator" in library.names()


def test_reload_reads_again(user_dir: Path):
    library = only_user(user_dir)
    assert library.names() == []
    write(user_dir, "t.toml", tutor(1))
    assert library.names() == []
    library.reload()
    assert library.names() == ["tutor"]


def test_from_paths_uses_templates_dir(tmp_path: Path):
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path / "d", cache_dir=tmp_path / "c")
    write(paths.templates_dir, "t.toml", tutor(1))
    assert "tutor" in TemplateLibrary.from_paths(paths).names()


# --- versions -----------------------------------------------------------------------------


@pytest.fixture
def versioned(user_dir: Path) -> TemplateLibrary:
    for version in (1, 3, 2):
        write(user_dir, f"tutor-{version}.toml", tutor(version))
    return only_user(user_dir)


def test_latest_version_is_the_default(versioned: TemplateLibrary):
    assert versioned.get("tutor").version == 3
    assert [t.ref for t in versioned.list()] == ["tutor@3"]
    assert [t.ref for t in versioned.list(all_versions=True)] == ["tutor@1", "tutor@2", "tutor@3"]
    assert len(versioned) == 1


def test_pinned_version(versioned: TemplateLibrary):
    assert versioned.get("tutor@1").version == 1
    assert versioned.get("tutor", 2).version == 2
    assert versioned.get("tutor@latest").version == 3
    assert versioned.render("tutor@1", {"topic": "x"}).text == "vx1"


def test_unknown_version_lists_versions(versioned: TemplateLibrary):
    with pytest.raises(UnknownVersion, match=r"template 'tutor' has no version 7 \(versions: 1, 2, 3\)"):
        versioned.get("tutor@7")
    with pytest.raises(UnknownTemplate):  # UnknownVersion is an UnknownTemplate
        versioned.get("tutor", 9)


def test_bad_reference(versioned: TemplateLibrary):
    for ref in ("tutor@x", "tutor@0", "tutor@", "@2"):
        with pytest.raises(TemplateError):
            versioned.get(ref)


def test_unknown_template_lists_close_names():
    library = TemplateLibrary(None)
    with pytest.raises(UnknownTemplate, match=r"unknown template 'translater' \(did you mean: translator\?\)"):
        library.get("translater")
    with pytest.raises(UnknownTemplate, match=r"available: code-reviewer, concise, summarizer, translator"):
        library.get("zzzzzz")


def test_resolve_for_without_split_is_latest_and_pinned_is_pinned(versioned: TemplateLibrary):
    template, assignment = versioned.resolve_for("tutor", "conv-1")
    assert template.version == 3
    assert (assignment.version, assignment.reason) == (3, AssignmentReason.LATEST)
    template, assignment = versioned.resolve_for("tutor@2", "conv-1")
    assert template.version == 2
    assert (assignment.name, assignment.reason) == ("tutor", AssignmentReason.PINNED)


# --- A/B ----------------------------------------------------------------------------------


def ab_library(user_dir: Path, weights: str = "[1, 3]") -> TemplateLibrary:
    write(user_dir, "t1.toml", tutor(1))
    write(user_dir, "t2.toml", tutor(2, f"[ab]\nversions = [1, 2]\nweights = {weights}\n"))
    return only_user(user_dir)


def test_ab_assignment_is_stable_per_conversation(user_dir: Path):
    library = ab_library(user_dir)
    first = [library.resolve_for("tutor", f"conv-{i}").assignment for i in range(50)]
    again = [
        TemplateLibrary(user_dir, builtin_dir=None).resolve_for("tutor", f"conv-{i}").assignment for i in range(50)
    ]
    assert first == again
    assert {a.version for a in first} == {1, 2}
    assert all(a.reason is AssignmentReason.AB and a.split == ((1, 1.0), (2, 3.0)) for a in first)
    template, assignment = library.resolve_for("tutor", "conv-7")
    assert template.version == assignment.version


def test_ab_respects_weights_over_many_ids(user_dir: Path):
    library = ab_library(user_dir)
    counts = Counter(library.resolve_for("tutor", f"id-{i}").assignment.version for i in range(4000))
    assert 0.22 < counts[1] / 4000 < 0.28


def test_zero_weight_arm_is_never_chosen(user_dir: Path):
    library = ab_library(user_dir, "[0, 1]")
    assert {library.resolve_for("tutor", str(i)).assignment.version for i in range(300)} == {2}


def test_ab_hash_depends_on_name_and_conversation():
    assert bucket("tutor", "c1") == bucket("tutor", "c1")
    assert len({bucket("tutor", f"c{i}") for i in range(100)}) == 100
    assert bucket("tutor", "c1") != bucket("other", "c1")
    assert all(0 <= bucket("x", str(i)) < 1 for i in range(100))


def test_ab_pinned_reference_skips_the_split(user_dir: Path):
    library = ab_library(user_dir, "[1, 0]")
    assert library.resolve_for("tutor@2", "c").assignment.reason is AssignmentReason.PINNED
    assert library.resolve_for("tutor", "c").assignment.version == 1


def test_explicit_latest_skips_the_split(user_dir: Path):
    library = ab_library(user_dir, "[1, 0]")
    template, assignment = library.resolve_for("tutor@latest", "c")
    assert (template.version, assignment.reason) == (2, AssignmentReason.PINNED)


def test_conflicting_reference_and_version(versioned: TemplateLibrary):
    assert versioned.get("tutor@2", 2).version == 2
    with pytest.raises(TemplateError, match="conflicts"):
        versioned.get("tutor@2", 1)


def test_split_only_on_older_version_is_not_used(user_dir: Path):
    write(user_dir, "t1.toml", tutor(1, "[ab]\nversions = [1]\n"))
    write(user_dir, "t2.toml", tutor(2))
    library = only_user(user_dir)
    assert library.resolve_for("tutor", "c").assignment.reason is AssignmentReason.LATEST


def test_split_naming_a_missing_version_is_reported_and_ignored(user_dir: Path):
    write(user_dir, "t1.toml", tutor(1))
    path = write(user_dir, "t2.toml", tutor(2, "[ab]\nversions = [1, 2, 5]\n"))
    library = only_user(user_dir)
    (problem,) = library.problems
    assert problem.path == path and "no version 5" in problem.message
    assert library.resolve_for("tutor", "c").assignment.reason is AssignmentReason.LATEST
    assert library.get("tutor").ab is None
