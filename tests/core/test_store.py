import sqlite3
import subprocess
import sys
from types import SimpleNamespace

from chatapp.domain import MessageStatus, Role
from chatapp.store.conversations import Store


def test_messages_round_trip_in_order(tmp_path):
    store = Store.open(tmp_path / "db.sqlite")
    conv = store.create_conversation("openai", "gpt-4o-mini")
    store.add_message(conv.id, Role.USER, "hi")
    reply = store.add_message(conv.id, Role.ASSISTANT, "", MessageStatus.STREAMING, "openai", "gpt-4o-mini")
    store.update_message(reply.id, content="hello", status=MessageStatus.COMPLETE, input_tokens=3, output_tokens=1)
    messages = store.messages(conv.id)
    assert [m.content for m in messages] == ["hi", "hello"]
    assert messages[1].status is MessageStatus.COMPLETE and messages[1].output_tokens == 1
    listed = store.list_conversations()
    assert listed[0].message_count == 2 and listed[0].title == "hi"


def test_wal_mode_and_schema_version(tmp_path):
    Store.open(tmp_path / "db.sqlite").close()
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1


def test_lone_surrogate_is_stored_not_raised(tmp_path):
    store = Store.open(tmp_path / "db.sqlite")
    conv = store.create_conversation()
    message = store.add_message(conv.id, Role.USER, "bad \ud800 text")
    assert store.get_message(message.id).content == "bad \ufffd text"


def test_streaming_rows_left_by_a_crash_become_incomplete(tmp_path):
    crash = (  # another process starts a reply and dies without closing anything
        "import os, sys; from chatapp.domain import MessageStatus, Role; from chatapp.store.conversations import Store;"
        "store = Store.open(__import__('pathlib').Path(sys.argv[1])); conv = store.create_conversation();"
        "print(store.add_message(conv.id, Role.ASSISTANT, 'partial', MessageStatus.STREAMING).id, flush=True);"
        "os._exit(0)"
    )
    done = subprocess.run([sys.executable, "-c", crash, str(tmp_path / "db.sqlite")], capture_output=True, text=True)
    reply = SimpleNamespace(id=done.stdout.strip())
    store = Store.open(tmp_path / "db.sqlite")
    assert store.close_streaming() == 1
    assert store.get_message(reply.id).status is MessageStatus.INCOMPLETE
    assert store.get_message(reply.id).content == "partial"


def test_find_by_unique_prefix(tmp_path):
    store = Store.open(tmp_path / "db.sqlite")
    conv = store.create_conversation()
    assert store.find_conversation(conv.id[:6]).id == conv.id
    assert store.find_conversation("zz%") is None


def test_store_refuses_use_from_another_thread(tmp_path):
    """Regression: a gauge worker thread read the database while the app closed it (segfault)."""
    import threading

    store = Store.open(tmp_path / "db.sqlite")
    errors = []

    def use():
        try:
            store.list_conversations()
        except sqlite3.ProgrammingError as exc:
            errors.append(exc)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    assert errors, "the connection must only be usable from the thread that opened it"
