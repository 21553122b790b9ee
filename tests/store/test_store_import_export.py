"""Export and import: chatapp's JSON round trip, ChatGPT's conversations.json, hostile files."""

import json
import shutil
from pathlib import Path

import pytest

from chatapp.domain import ImportFileError, MessageStatus, Role
from chatapp.store.context_records import ContextRecords
from chatapp.store.conversations import Store
from chatapp.store.export_format import json_chunks, markdown
from chatapp.store.importer import import_file

FIXTURES = Path(__file__).parent / "fixtures"


def sample(store):
    """A conversation with every kind of thing a user owns: a branch, statuses, usage, a summary, meta."""
    conv = store.create_conversation("openai", "gpt-4o-mini")
    store.set_title(conv.id, "Generated title")
    store.update_meta(conv.id, template={"name": "tutor", "version": 2, "role": "system", "text": "Be kind"})
    user = store.add_message(conv.id, Role.USER, "Explain WAL ✓ \x1b[31m")
    first = store.add_message(conv.id, Role.ASSISTANT, "partial", MessageStatus.INCOMPLETE, "openai", "gpt-4o-mini")
    store.update_message(first.id, error="stream broke", input_tokens=10, output_tokens=2)
    store.set_current_leaf(conv.id, user.id)
    second = store.add_message(conv.id, Role.ASSISTANT, "Write-ahead logging.", MessageStatus.COMPLETE, "anthropic",
                               "claude-sonnet-4-5")
    store.update_message(second.id, input_tokens=10, output_tokens=4)
    ContextRecords(store.connection).add_summary(conv.id, user.id, first.id, "A summary", "h", "openai", "m")
    return conv


def export_text(store, ids=None):
    ids = ids if ids is not None else [c.id for c in store.list_conversations()]
    return "".join(json_chunks(store, ids))


def canonical(text):
    return json.dumps(json.loads(text), sort_keys=True)


def test_export_import_export_is_identical(tmp_path):
    source = Store.open(tmp_path / "a.db")
    sample(source)
    other = source.create_conversation("embedded", "gemma")
    source.rename(other.id, "Mine")
    source.add_message(other.id, Role.USER, "hello")
    first = export_text(source)
    (tmp_path / "export.json").write_text(first, encoding="utf-8")

    target = Store.open(tmp_path / "b.db")
    report = import_file(target, tmp_path / "export.json")
    assert (report.imported, report.messages) == (2, 4)
    assert export_text(target) == first  # byte for byte, in the order written
    assert canonical(export_text(target)) == canonical(first)
    [conv] = [c for c in target.list_conversations() if c.title == "Generated title"]
    assert [m.content for m in target.messages(conv.id)] == ["Explain WAL ✓ \x1b[31m", "Write-ahead logging."]
    assert target.get_conversation(other.id).title_source == "user"


def test_a_key_sorted_dump_imports_too(tmp_path):
    source = Store.open(tmp_path / "a.db")
    sample(source)
    (tmp_path / "sorted.json").write_text(canonical(export_text(source)), encoding="utf-8")
    target = Store.open(tmp_path / "b.db")
    assert import_file(target, tmp_path / "sorted.json").imported == 1
    assert canonical(export_text(target)) == canonical(export_text(source))


def test_importing_twice_does_not_duplicate(tmp_path):
    store = Store.open(tmp_path / "a.db")
    sample(store)
    (tmp_path / "e.json").write_text(export_text(store), encoding="utf-8")
    report = import_file(store, tmp_path / "e.json")
    assert (report.imported, report.already_there) == (0, 1)
    shutil.copy(FIXTURES / "chatgpt_conversations.json", tmp_path / "c.json")
    assert import_file(store, tmp_path / "c.json").imported == 3
    assert import_file(store, tmp_path / "c.json").already_there == 3
    assert len(store.list_conversations()) == 4


def test_the_export_holds_the_tree_and_everything_a_user_owns(tmp_path):
    store = Store.open(tmp_path / "a.db")
    conv = sample(store)
    [record] = json.loads(export_text(store))["conversations"]
    assert json.loads(export_text(store))["format"] == "chatapp-export"
    assert record["title"] == "Generated title" and record["title_source"] == "generated"
    assert record["meta"]["template"]["name"] == "tutor"
    assert [m["status"] for m in record["messages"]] == ["complete", "incomplete", "complete"]
    user, first, second = record["messages"]
    assert first["parent"] == second["parent"] == user["id"] and record["current_leaf"] == second["id"]
    assert first["usage"] == {"input_tokens": 10, "output_tokens": 2} and first["error"] == "stream broke"
    assert record["summaries"][0]["content"] == "A summary"
    text = markdown(store, conv.id)
    assert "## Assistant · anthropic · claude-sonnet-4-5" in text and "partial" not in text


def test_chatgpt_export_imports_titles_current_branch_and_counts(tmp_path):
    store = Store.open(tmp_path / "a.db")
    report = import_file(store, FIXTURES / "chatgpt_conversations.json")
    assert (report.format, report.imported, report.messages) == ("chatgpt", 3, 13)
    skipped = report.skipped
    assert (skipped.system, skipped.tool, skipped.hidden, skipped.empty) == (1, 2, 1, 1)
    by_title = {c.title: c for c in store.list_conversations()}
    assert set(by_title) == {"Bread questions", "What is in this picture", "Two roots"}
    bread = by_title["Bread questions"]
    assert bread.created == 1700000000.5 and bread.title_source == "imported"
    assert bread.source_id == "chatgpt:11111111-aaaa-4bbb-8ccc-000000000001"
    assert [m.content for m in store.messages(bread.id)] == [
        "How do I bake bread?", "Mix flour, water, salt and yeast.", "Which flour gives the crispest crust?",
        "A strong white flour and a hot oven with steam."]
    assert bread.message_count == 6
    assert store.messages(bread.id)[1].model == "gpt-4o"
    edited = store.messages(bread.id)[2]
    assert [m.content for m in store.siblings(edited.id)] == ["Which flour is best?", edited.content]
    picture = store.messages(by_title["What is in this picture"].id)
    assert picture[0].content == "[image asset pointer not imported]\n\nWhat kind of loaf is this?"
    assert [m.role for m in picture] == [Role.USER, Role.ASSISTANT, Role.ASSISTANT]
    roots = by_title["Two roots"]
    assert [m.content for m in store.messages(roots.id)] == ["Second attempt", "Second answer"]
    first_root = store.messages(roots.id)[0]
    assert [m.content for m in store.siblings(first_root.id)] == ["First attempt", "Second attempt"]
    statuses = {m.content: m.status for m in store.all_messages(roots.id)}
    assert statuses["First answer"] is MessageStatus.INCOMPLETE


HOSTILE = {
    "truncated": None,  # filled from a real export below
    "random": b"\x89PNG\r\n\x1a\n\x00\x00garbage\xff\xfe",
    "foreign object": b'{"name": "not ours", "items": [1, 2, 3]}',
    "foreign array": b"[1, 2, 3]",
    "empty array": b"[]",
    "wrong format": b'{"format": "someone-else", "version": 1, "conversations": []}',
    "newer version": b'{"format": "chatapp-export", "version": 99, "conversations": []}',
    "bad role": None,
    "parent after child": None,
    "sql in an id": None,
    "chatgpt without mapping": b'[{"title": "x", "id": "abc"}]',
    "chatgpt mapping of numbers": b'[{"title": "x", "id": "abc", "mapping": {"a": 5}}]',
    "empty file": b"",
    "deep nesting": b"[" * 100000,
}


def hostile_bytes(name, good):
    record = json.loads(good)
    conv = max(record["conversations"], key=lambda c: len(c["messages"]))
    if name == "truncated":
        return good.encode()[: len(good) // 2]
    if name == "bad role":
        conv["messages"][1]["role"] = "admin"
    elif name == "parent after child":
        conv["messages"].reverse()
    elif name == "sql in an id":
        conv["id"] = "x'); DROP TABLE messages; --"
    return json.dumps(record).encode()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_file_is_refused_in_one_line_and_nothing_changes(tmp_path, name):
    store = Store.open(tmp_path / "a.db")
    sample(store)
    before = export_text(store)
    good_source = Store.open(tmp_path / "g.db")
    sample(good_source)
    good_source.add_message(good_source.create_conversation().id, Role.USER, "second conversation")
    good = export_text(good_source)
    data = HOSTILE[name] if HOSTILE[name] is not None else hostile_bytes(name, good)
    if name == "truncated":
        # the first conversation parses; the cut comes later: it must still write nothing
        data = good.encode()[: good.index("second conversation")]
    path = tmp_path / "bad.json"
    path.write_bytes(data)
    with pytest.raises(ImportFileError) as caught:
        import_file(store, path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(path)) and len(message) < 300
    assert export_text(store) == before
    assert not store.connection.in_transaction


def test_a_missing_file_is_one_line(tmp_path):
    store = Store.open(tmp_path / "a.db")
    with pytest.raises(ImportFileError, match="No such file"):
        import_file(store, tmp_path / "nope.json")


def _triggers(store):
    return sorted(row[0] for row in store.connection.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"))


def _derived(store):
    """What the triggers keep, recomputed from the messages: counts, first prompts, the search index."""
    conn = store.connection
    counts = conn.execute(
        "SELECT id, message_count = (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id), first_prompt IS "
        "(SELECT substr(content, 1, 200) FROM messages m WHERE m.conversation_id = c.id AND m.role = 'user' "
        "ORDER BY seq LIMIT 1) FROM conversations c").fetchall()
    conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
    return [tuple(row) for row in counts]


def test_an_import_indexes_and_counts_its_messages_and_keeps_the_triggers(tmp_path):
    """The importer sets the per-row triggers aside and does their work once: the result must be the same."""
    from chatapp.store.search import search

    store = Store.open(tmp_path / "a.db")
    mine = store.create_conversation("openai", "m")
    store.add_message(mine.id, Role.USER, "zymurgy starter " + "long " * 100)
    triggers = _triggers(store)
    report = import_file(store, FIXTURES / "chatgpt_conversations.json")
    assert report.imported == 3
    assert _triggers(store) == triggers
    assert all(same_count and same_prompt for _, same_count, same_prompt in _derived(store))
    assert {hit.conversation_id for hit in search(store.connection, "crispest")} == {
        c.id for c in store.list_conversations() if c.title == "Bread questions"}
    assert [hit.conversation_id for hit in search(store.connection, "zymurgy")] == [mine.id]
    later = store.add_message(mine.id, Role.ASSISTANT, "rye afterwards")  # the triggers work again
    assert [hit.message_id for hit in search(store.connection, "rye")] == [later.id]
    assert store.get_conversation(mine.id).message_count == 2


def test_a_refused_import_leaves_the_triggers_in_place(tmp_path):
    from chatapp.store.search import search

    store = Store.open(tmp_path / "a.db")
    triggers = _triggers(store)
    good = (FIXTURES / "chatgpt_conversations.json").read_text(encoding="utf-8")
    path = tmp_path / "cut.json"
    path.write_text(good[: len(good) - 40], encoding="utf-8")
    with pytest.raises(ImportFileError):
        import_file(store, path)
    assert _triggers(store) == triggers
    conv = store.create_conversation()
    message = store.add_message(conv.id, Role.USER, "crispest crust")
    assert [hit.message_id for hit in search(store.connection, "crispest")] == [message.id]
    assert store.get_conversation(conv.id).message_count == 1


def test_the_import_page_cache_is_given_back_after_an_import_and_after_a_refusal(tmp_path):
    store = Store.open(tmp_path / "a.db")
    before = store.connection.execute("PRAGMA cache_size").fetchone()[0]
    import_file(store, FIXTURES / "chatgpt_conversations.json")
    assert store.connection.execute("PRAGMA cache_size").fetchone()[0] == before
    (tmp_path / "bad.json").write_bytes(b"[1, 2]")
    with pytest.raises(ImportFileError):
        import_file(store, tmp_path / "bad.json")
    assert store.connection.execute("PRAGMA cache_size").fetchone()[0] == before
