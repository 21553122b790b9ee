"""Conversations are trees: siblings instead of overwrites, a current leaf, the path to it."""

from chatapp.domain import MessageStatus, Role
from chatapp.store.conversations import Store


def make_store(tmp_path):
    return Store.open(tmp_path / "chatapp.db")


def test_a_regenerated_reply_is_a_sibling_and_the_path_follows_the_leaf(tmp_path):
    store = make_store(tmp_path)
    conv = store.create_conversation("openai", "m")
    user = store.add_message(conv.id, Role.USER, "q")
    first = store.add_message(conv.id, Role.ASSISTANT, "answer one")
    store.set_current_leaf(conv.id, user.id)  # regenerate: the next reply goes under the same prompt
    second = store.add_message(conv.id, Role.ASSISTANT, "answer two")
    assert second.parent_id == user.id
    assert [m.content for m in store.messages(conv.id)] == ["q", "answer two"]
    assert [m.id for m in store.siblings(second.id)] == [first.id, second.id]
    assert store.branch_counts(conv.id) == {user.id: 2}
    assert store.show_branch(first.id) == conv.id
    assert [m.content for m in store.messages(conv.id)] == ["q", "answer one"]
    assert len(store.all_messages(conv.id)) == 3 and store.get_conversation(conv.id).message_count == 3


def test_show_branch_goes_to_the_newest_leaf_below(tmp_path):
    store = make_store(tmp_path)
    conv = store.create_conversation()
    root = store.add_message(conv.id, Role.USER, "a")
    store.add_message(conv.id, Role.ASSISTANT, "b")
    deep = store.add_message(conv.id, Role.USER, "c")
    store.set_current_leaf(conv.id, None)
    other_root = store.add_message(conv.id, Role.USER, "edited a")  # an edit of the first prompt
    assert other_root.parent_id is None
    assert [m.content for m in store.messages(conv.id)] == ["edited a"]
    assert [m.id for m in store.siblings(root.id)] == [root.id, other_root.id]
    store.show_branch(root.id)
    assert store.get_conversation(conv.id).current_leaf == deep.id
    assert [m.content for m in store.messages(conv.id)] == ["a", "b", "c"]


def test_a_user_title_wins_over_generated_ones(tmp_path):
    store = make_store(tmp_path)
    conv = store.create_conversation()
    assert store.set_title(conv.id, "Generated")
    assert store.rename(conv.id, "Mine")
    assert not store.set_title(conv.id, "Generated later")
    got = store.get_conversation(conv.id)
    assert got.title == "Mine" and got.title_source == "user"


def test_deleting_removes_the_text_from_the_file_and_the_index(tmp_path):
    store = make_store(tmp_path)
    keep = store.create_conversation()
    store.add_message(keep.id, Role.USER, "an ordinary message about bread")
    gone = store.create_conversation()
    store.add_message(gone.id, Role.USER, "my secret is zanzibarquokka in plain words")
    store.add_message(gone.id, Role.ASSISTANT, "noted zanzibarquokka", MessageStatus.COMPLETE)
    store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert store.delete_conversation(gone.id)
    assert store.connection.execute(
        "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'zanzibarquokka'").fetchone()[0] == 0
    store.close()
    for name in ("chatapp.db", "chatapp.db-wal"):
        path = tmp_path / name
        if path.exists():
            assert b"zanzibarquokka" not in path.read_bytes(), name
    store = make_store(tmp_path)
    assert [c.id for c in store.list_conversations()] == [keep.id]
    assert store.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_search_finds_words_with_highlighted_snippets(tmp_path):
    from chatapp.store.search import search

    store = make_store(tmp_path)
    conv = store.create_conversation()
    store.rename(conv.id, "Bread")
    store.add_message(conv.id, Role.USER, "How long should sourdough ferment overnight?")
    hit_message = store.add_message(conv.id, Role.ASSISTANT, "Sourdough ferments 8 to 12 hours; [bold]x[/] AND NEAR")
    reply = store.add_message(conv.id, Role.ASSISTANT, "", MessageStatus.STREAMING)
    store.update_message(reply.id, content="updated text mentions croissants")
    hits = search(store.connection, "sourd")
    assert hits[0].message_id == hit_message.id and len(hits) == 2
    assert ("Sourdough", True) in hits[0].parts() and hits[0].title == "Bread"
    assert [h.message_id for h in search(store.connection, "croissants")] == [reply.id]
    # FTS5 syntax in what the user types is only text
    assert [h.message_id for h in search(store.connection, 'AND "NEAR( [/] *')] == [hit_message.id]
    assert search(store.connection, "") == []
    assert [h.message_id for h in search(store.connection, "near and")] == [hit_message.id]
