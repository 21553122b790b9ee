"""The conversation browser and branch view, driven through the Pilot."""

import time

import pytest
from tui_helpers import wait_for

from chatapp.config import load_settings
from chatapp.domain import MessageStatus, Role
from chatapp.service import ChatService
from chatapp.store.conversations import Store
from chatapp.tui.app import ChatApp
from chatapp.tui.screens.choice import ChoiceScreen
from chatapp.tui.screens.conversations import ConversationsScreen
from chatapp.tui.screens.text_prompt import TextPromptScreen
from chatapp.tui.widgets.conversation_list import ConversationList
from chatapp.tui.widgets.message import AssistantMessage, BranchMarker, UserMessage


@pytest.fixture
def seeded(isolated_env, monkeypatch):
    """Three conversations written straight to the store, the newest last; the middle one is long."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    store = Store.open(load_settings().paths.database)
    ids = {}
    for title, turns in (("Sourdough", 2), ("Long history", 40), ("Kernel modules", 2)):
        conv = store.create_conversation("openai", "gpt-4o-mini")
        store.set_title(conv.id, title)
        for turn in range(turns):
            store.add_message(conv.id, Role.USER, f"{title} question {turn}")
            word = " The word is quokkaberry." if (title, turn) == ("Long history", 3) else ""
            store.add_message(conv.id, Role.ASSISTANT, f"{title} answer {turn}.{word}", MessageStatus.COMPLETE,
                              "openai", "gpt-4o-mini")
        ids[title] = conv.id
    store.close()
    return ids


def app_for(service, conversation_id=None):
    return ChatApp(service, service.target_for(None), conversation_id)


def rows(screen):
    return screen.query_one(ConversationList).rows


async def open_browser(pilot):
    await pilot.press("ctrl+g")
    await wait_for(lambda: isinstance(pilot.app.screen, ConversationsScreen), pilot)
    screen = pilot.app.screen
    await wait_for(lambda: screen.is_mounted and rows(screen), pilot)
    return screen


async def test_browser_lists_newest_first_and_typing_filters(seeded):
    service = ChatService.open(load_settings())
    async with app_for(service).run_test(size=(110, 30)) as pilot:
        screen = await open_browser(pilot)
        titles = [r.conversation.title for r in rows(screen)]
        assert titles == ["Kernel modules", "Long history", "Sourdough"]
        await pilot.press(*"sour")
        await wait_for(lambda: [r.conversation.title for r in rows(screen) if r.conversation] == ["Sourdough"],
                       pilot)
        painted = "\n".join(screen.query_one(ConversationList).render_line(y).text for y in range(3))
        assert "Sourdough" in painted and "msgs" in painted
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(pilot.app.screen, ConversationsScreen), pilot)


async def test_search_then_enter_opens_at_the_matching_message(seeded):
    service = ChatService.open(load_settings())
    async with app_for(service).run_test(size=(110, 30)) as pilot:
        screen = await open_browser(pilot)
        await pilot.press(*"quokkab")
        await wait_for(lambda: any(r.hit for r in rows(screen)), pilot)
        [hit] = [r.hit for r in rows(screen) if r.hit]
        assert ("quokkaberry", True) in hit.parts()
        await pilot.press("down")  # into the list
        listing = screen.query_one(ConversationList)
        while listing.current is None or listing.current.hit is None:
            await pilot.press("down")
        await pilot.press("enter")
        chat = pilot.app.screen
        await wait_for(lambda: chat.conversation_id == seeded["Long history"] and chat.query(".-hit"), pilot)
        assert len(chat.query(UserMessage)) == 40 and len(chat.query(AssistantMessage)) == 40
        target = chat.query_one(".-hit")
        assert "quokkaberry" in target.text
        messages = chat.message_list

        def hit_in_view():
            region = target.virtual_region
            top = messages.scroll_offset.y
            return region.y >= top and region.y < top + messages.size.height

        await wait_for(hit_in_view, pilot)
        assert messages.scroll_offset.y < messages.max_scroll_y  # not simply scrolled to the end


async def test_enter_right_after_typing_a_word_opens_its_first_hit(seeded, monkeypatch):
    """Seen in tmux: a word typed and Enter pressed at once did nothing (the search waits for a pause in
    the typing, and Enter came first): Enter runs the pending search and opens its newest hit."""
    monkeypatch.setattr("chatapp.tui.screens.conversations.SEARCH_DELAY", 60.0)  # the pause never ends here
    service = ChatService.open(load_settings())
    async with app_for(service).run_test(size=(110, 30)) as pilot:
        await open_browser(pilot)
        await pilot.press(*"quokkaberry", "enter")
        chat = pilot.app.screen
        await wait_for(lambda: not isinstance(chat, ConversationsScreen) and chat.query(".-hit"), pilot)
        assert chat.conversation_id == seeded["Long history"]
        assert "quokkaberry" in chat.query_one(".-hit").text


async def test_rename_wins_and_delete_asks_first(seeded):
    service = ChatService.open(load_settings())
    async with app_for(service).run_test(size=(110, 30)) as pilot:
        screen = await open_browser(pilot)
        screen.query_one(ConversationList).focus()
        await pilot.press("ctrl+r")
        await wait_for(lambda: isinstance(pilot.app.screen, TextPromptScreen), pilot)
        prompt = pilot.app.screen.query_one("#answer")
        prompt.value = "Linux drivers"
        await pilot.press("enter")
        await wait_for(lambda: rows(screen)[0].conversation.title == "Linux drivers", pilot)
        assert not service._store.set_title(seeded["Kernel modules"], "Generated again")  # the title job's own call

        await pilot.press("down")  # "Long history"
        await pilot.press("ctrl+d")
        await wait_for(lambda: isinstance(pilot.app.screen, ChoiceScreen), pilot)
        await pilot.press("escape")  # kept
        await wait_for(lambda: pilot.app.screen is screen, pilot)
        assert len(rows(screen)) == 3
        await pilot.press("ctrl+d")
        await wait_for(lambda: isinstance(pilot.app.screen, ChoiceScreen), pilot)
        await pilot.click("#delete")
        await wait_for(lambda: len(rows(screen)) == 2, pilot)
        assert [r.conversation.title for r in rows(screen)] == ["Linux drivers", "Sourdough"]
        assert service.search("quokkaberry") == []


async def test_open_on_a_conversation_and_step_between_versions(seeded):
    store = Store.open(load_settings().paths.database)
    conv_id = seeded["Sourdough"]
    path = store.messages(conv_id)
    last_prompt = path[-2]
    store.set_current_leaf(conv_id, last_prompt.id)
    store.add_message(conv_id, Role.ASSISTANT, "A second version of the answer", MessageStatus.COMPLETE, "openai",
                      "gpt-4o-mini")
    store.close()
    service = ChatService.open(load_settings())
    async with app_for(service, conv_id).run_test(size=(110, 30)) as pilot:
        chat = pilot.app.screen
        await wait_for(lambda: chat.query(BranchMarker), pilot)
        assert "2/2" in str(chat.query_one(BranchMarker).render())
        assert chat.query(AssistantMessage).last().text.startswith("A second version")
        await pilot.press("alt+left")
        await wait_for(lambda: "1/2" in str(chat.query_one(BranchMarker).render()), pilot)
        assert chat.query(AssistantMessage).last().text.startswith("Sourdough answer 1")
        assert [m.content for m in service.messages(conv_id)][-1] == "Sourdough answer 1."
        await pilot.press("alt+right")
        await wait_for(lambda: "2/2" in str(chat.query_one(BranchMarker).render()), pilot)


async def test_the_command_palette_opens_the_browser_and_exports_the_open_conversation(seeded, tmp_path, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    service = ChatService.open(load_settings())
    conv_id = seeded["Sourdough"]
    async with app_for(service, conv_id).run_test(size=(110, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Export conversation as Markdown")
        await pilot.pause(0.5)
        await pilot.press("enter")
        exported = tmp_path / f"chatapp-{conv_id}.md"
        await wait_for(exported.exists, pilot)
        assert "## Assistant · openai · gpt-4o-mini" in exported.read_text() and "Sourdough answer 1." in \
            exported.read_text()
        assert os.stat(exported).st_mode & 0o777 == 0o600
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Conversations")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(pilot.app.screen, ConversationsScreen), pilot)


def summary_line(screen):
    return str(screen.query_one("#browser-summary").render())


async def test_the_summary_counts_in_the_singular_and_the_plural(isolated_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-tui-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    store = Store.open(load_settings().paths.database)
    only = store.create_conversation("openai", "gpt-4o-mini", title="Only one")
    store.add_message(only.id, Role.USER, "a single question")
    store.close()
    service = ChatService.open(load_settings())
    async with app_for(service).run_test(size=(110, 30)) as pilot:
        screen = await open_browser(pilot)
        assert summary_line(screen) == "1 conversation"
        await pilot.press(*"single")
        await wait_for(lambda: "matching" in summary_line(screen), pilot)
        assert summary_line(screen) == "0 of 1 conversation · 1 matching message"
        await pilot.press("ctrl+a", "ctrl+k", *"only")
        await wait_for(lambda: summary_line(screen) == "1 of 1 conversation · 0 matching messages", pilot)


def test_snapshot_of_the_browser_with_titles_and_search_hits(snap_compare, seeded, monkeypatch):
    """The browser after typing a word: the titles that match, then the messages holding it, words lit."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    store = Store.open(load_settings().paths.database)
    for offset, conversation_id in enumerate(seeded.values()):  # fixed times: the picture shows them
        store.connection.execute("UPDATE conversations SET created = ?, updated = ? WHERE id = ?",
                                 (1796000000 + offset * 3600, 1796000000 + offset * 3600, conversation_id))
    store.close()
    service = ChatService.open(load_settings())

    async def search_a_word(pilot):
        screen = await open_browser(pilot)
        await pilot.press(*"sourdough")
        await wait_for(lambda: "matching" in summary_line(screen), pilot)
        screen.set_focus(screen.query_one(ConversationList))  # no blinking cursor in the picture
        await pilot.pause(0.3)

    try:
        assert snap_compare(app_for(service), terminal_size=(110, 24), run_before=search_a_word)
    finally:
        monkeypatch.undo()
        time.tzset()
