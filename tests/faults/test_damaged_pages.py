"""A database whose damage is not touched at open (valid header and schema, one corrupt page deep in the
messages table; issue 13, case 4 continued): `doctor` finds it with `PRAGMA quick_check`; a read that hits
it later says so in one line, never a traceback; nothing modifies the file."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from chatapp.cli import main
from chatapp.domain import MessageStatus, Role
from chatapp.store.conversations import Store

CONVERSATIONS = 40


def digest(paths) -> dict[str, str]:
    """Every file in the data dir and a hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(paths.data_dir.iterdir())}


def damaged_ids(paths) -> list[str]:
    """The conversations whose messages cannot be read (by plain sqlite3, outside chatapp)."""
    db = sqlite3.connect(paths.database)
    try:
        hit = []
        for (cid,) in db.execute("SELECT id FROM conversations ORDER BY created").fetchall():
            try:
                db.execute("SELECT content FROM messages WHERE conversation_id = ?", (cid,)).fetchall()
                db.execute("SELECT content FROM messages WHERE num IN (SELECT num FROM messages "
                           "WHERE conversation_id = ?)", (cid,)).fetchall()
            except sqlite3.DatabaseError:
                hit.append(cid)
        return hit
    finally:
        db.close()


@pytest.fixture
def damaged(isolated_env):
    """40 conversations of 4 messages; one leaf page in the middle of the messages table overwritten."""
    store = Store.open(isolated_env.database)
    for i in range(CONVERSATIONS):
        conversation = store.create_conversation("p", "m", title=f"conversation {i}")
        for j in range(4):
            store.add_message(conversation.id, Role.USER if j % 2 == 0 else Role.ASSISTANT,
                              f"message {i}.{j} " + "lorem ipsum " * 60, MessageStatus.COMPLETE)
    store.close()
    db = sqlite3.connect(isolated_env.database)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    leaves = [row[0] for row in db.execute(
        "SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'leaf' ORDER BY pageno")]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    page = leaves[len(leaves) // 2]
    with open(isolated_env.database, "r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(b"\xa5" * page_size)
    hit = damaged_ids(isolated_env)
    assert 0 < len(hit) < CONVERSATIONS
    return hit


def outputs(capsys) -> tuple[str, str]:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return out, err


def test_doctor_runs_quick_check_and_reports_the_damage_in_one_line(isolated_env, damaged, capsys):
    before = digest(isolated_env)
    code = main(["doctor"])
    out, _err = outputs(capsys)
    assert code == 1
    [line] = [line for line in out.splitlines() if "damaged" in line]
    assert "quick_check" in line and "doctor --salvage" in line
    assert digest(isolated_env) == before


def test_doctor_says_a_sound_database_is_sound(isolated_env, capsys):
    store = Store.open(isolated_env.database)
    store.create_conversation()
    store.close()
    assert main(["doctor"]) == 0
    out, _ = outputs(capsys)
    assert "integrity: ok" in out


def test_ls_still_lists_every_conversation(isolated_env, damaged, capsys):
    before = digest(isolated_env)
    assert main(["ls"]) == 0
    out, err = outputs(capsys)
    assert len(out.splitlines()) == CONVERSATIONS and err == ""
    assert digest(isolated_env) == before


def test_show_of_a_damaged_conversation_is_one_line_and_changes_nothing(isolated_env, damaged, capsys):
    before = digest(isolated_env)
    assert main(["show", damaged[0]]) == 1
    _out, err = outputs(capsys)
    assert err.count("\n") == 1 and "is damaged" in err and "chatapp doctor --salvage" in err
    assert digest(isolated_env) == before
    assert not list(isolated_env.data_dir.glob("*.corrupt-*"))


def test_show_of_a_sound_conversation_still_works(isolated_env, damaged, capsys):
    db = sqlite3.connect(isolated_env.database)
    sound = [cid for (cid,) in db.execute("SELECT id FROM conversations") if cid not in damaged]
    db.close()
    assert main(["show", sound[0]]) == 0
    out, _ = outputs(capsys)
    assert "lorem ipsum" in out


async def test_the_tui_opening_a_damaged_conversation_says_so_inline(isolated_env, damaged):
    from chatapp.config import load_settings
    from chatapp.service import ChatService
    from chatapp.tui.app import ChatApp
    from chatapp.tui.widgets.message import NoticeMessage

    before = digest(isolated_env)
    service = ChatService.open(load_settings())
    app = ChatApp(service, None, damaged[0])
    async with app.run_test() as pilot:
        await pilot.pause()
        notices = [str(n.render()) for n in pilot.app.screen.query(NoticeMessage)]
        assert any("is damaged" in n and "doctor --salvage" in n for n in notices), notices
        assert pilot.app.is_running
    assert digest(isolated_env) == before


async def test_the_conversation_browser_search_hitting_a_damaged_page_says_so_in_one_line(isolated_env, damaged):
    from chatapp.config import load_settings
    from chatapp.service import ChatService
    from chatapp.tui.app import ChatApp
    from chatapp.tui.screens.conversations import ConversationsScreen

    db = sqlite3.connect(isolated_env.database)
    [title] = db.execute("SELECT title FROM conversations WHERE id = ?", (damaged[0],)).fetchone()
    db.close()
    number = title.split()[-1]  # "conversation 17": its messages say "message 17.0" … "message 17.3"
    before = digest(isolated_env)
    service = ChatService.open(load_settings())
    app = ChatApp(service, None)
    async with app.run_test() as pilot:
        await pilot.press("ctrl+g")
        await _until(pilot, lambda: isinstance(pilot.app.screen, ConversationsScreen))
        browser = pilot.app.screen
        await pilot.press(*f"message {number}")
        summary = browser.query_one("#browser-summary")
        await _until(pilot, lambda: "is damaged" in str(summary.render()))
        line = str(summary.render())
        assert "\n" not in line.strip() and "doctor --salvage" in line, line
        assert pilot.app.is_running and pilot.app.screen is browser
    assert digest(isolated_env) == before


async def _until(pilot, condition, timeout: float = 20.0) -> None:
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await pilot.pause(0.05)


# --- doctor --salvage --------------------------------------------------------------------------


def readable_rows(paths) -> dict[int, str]:
    """Each message row plain sqlite3 can read on its own, by rowid."""
    db = sqlite3.connect(paths.database)
    try:
        found = {}
        for num in range(1, 1 + 4 * CONVERSATIONS + 10):
            try:
                row = db.execute("SELECT content FROM messages WHERE num = ?", (num,)).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row is not None:
                found[num] = row[0]
        return found
    finally:
        db.close()


def test_salvage_copies_every_readable_row_and_sets_the_damaged_file_aside(isolated_env, damaged, capsys):
    original = isolated_env.database.read_bytes()
    readable = readable_rows(isolated_env)
    assert 0 < len(readable) < 4 * CONVERSATIONS
    assert main(["doctor", "--salvage"]) == 0
    out, err = outputs(capsys)
    assert f"and {len(readable)} messages" in out and "integrity: ok" in out, out
    [aside] = [p for p in isolated_env.data_dir.glob("chatapp.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    assert aside.read_bytes() == original
    assert readable_rows(isolated_env) == readable  # every readable row, under its own rowid
    assert main(["ls"]) == 0
    out, err = outputs(capsys)
    assert len(out.splitlines()) >= CONVERSATIONS - len(damaged) and err == ""
    db = sqlite3.connect(isolated_env.database)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        counts = db.execute("SELECT COUNT(*) FROM conversations WHERE message_count != "
                            "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversations.id)").fetchone()
        assert counts[0] == 0
        hits = db.execute("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'lorem'").fetchone()[0]
        assert hits == len(readable)  # the full-text index is rebuilt
    finally:
        db.close()
    sound = next(cid for cid in _conversation_ids(isolated_env) if cid not in damaged)
    assert main(["show", sound]) == 0
    assert "lorem ipsum" in outputs(capsys)[0]


def _conversation_ids(paths) -> list[str]:
    db = sqlite3.connect(paths.database)
    try:
        return [cid for (cid,) in db.execute("SELECT id FROM conversations")]
    finally:
        db.close()


def test_salvage_loses_only_the_row_whose_text_page_is_damaged(isolated_env, capsys):
    store = Store.open(isolated_env.database)
    conversation = store.create_conversation("p", "m")
    for n in range(5):
        store.add_message(conversation.id, Role.USER, f"{n}:" + "long text " * 1500, MessageStatus.COMPLETE)
    store.close()
    db = sqlite3.connect(isolated_env.database)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    overflow = [row[0] for row in db.execute(
        "SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'overflow' ORDER BY pageno")]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(isolated_env.database, "r+b") as f:
        f.seek((overflow[len(overflow) // 2] - 1) * page_size)
        f.write(b"\xa5" * page_size)
    assert main(["doctor", "--salvage"]) == 0
    out, _ = outputs(capsys)
    assert "and 4 messages" in out, out
    kept = Store.open(isolated_env.database)
    assert len(kept.all_messages(conversation.id)) == 4
    path = kept.messages(conversation.id)  # a lost parent: the next message hangs from the one before it
    assert len(path) == 4 and path[0].content.startswith("0:")
    kept.close()


def test_salvage_of_a_sound_database_is_refused_and_changes_nothing(isolated_env, capsys):
    store = Store.open(isolated_env.database)
    store.create_conversation()
    store.close()
    before = digest(isolated_env)
    assert main(["doctor", "--salvage"]) == 1
    _, err = outputs(capsys)
    assert err.count("\n") == 1 and "nothing to salvage" in err
    assert digest(isolated_env) == before
