"""F1 lists every binding with its id and current key; the palette offers every action; the theme persists."""

from fakeserver import Reply
from test_provider_switch import finish_turn
from tui_helpers import wait_for

from chatapp.config import load_settings
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.screens.chat import ChatScreen
from chatapp.tui.screens.help import HelpScreen, binding_rows, binding_rows_for
from chatapp.tui.widgets.message import AssistantMessage, UserMessage


def configure(paths, url, extra=""):
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(f'local_servers = []\n{extra}\n[providers.p]\nkind = "openai"\n'
                                 f'base_url = "{url}"\napi_key = "k"\nmodel = "gpt-4o-mini"\n')


def test_help_rows_cover_every_binding_with_its_remapped_key():
    rows = binding_rows({"switch_provider": "f6"})
    ids = {row.binding_id for row in rows}
    for owner in (ChatScreen, AssistantMessage, UserMessage):
        for binding in owner.BINDINGS:
            assert binding.id in ids, binding
    assert [row.key for row in rows if row.binding_id == "switch_provider"] == ["f6"]


async def test_f1_opens_the_help_screen(isolated_env, fake_server):
    configure(isolated_env, fake_server.openai_base_url, '[keys]\npick_model = "f9"\n')
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test(size=(110, 50)) as pilot:
        await pilot.press("f1")
        await wait_for(lambda: isinstance(pilot.app.screen, HelpScreen), pilot)
        table = pilot.app.screen.query_one("#help-table")
        cells = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert ["f9", "pick_model", "Models", "chat"] in cells
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(pilot.app.screen, HelpScreen), pilot)


async def test_the_palette_offers_every_chat_and_message_action(isolated_env, fake_server):
    configure(isolated_env, fake_server.openai_base_url)
    fake_server.script(Reply("```\ncode here\n```\n"), match="openai")
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test(size=(100, 40)) as pilot:
        screen = pilot.app.screen
        titles = {command.title: command for command in pilot.app.get_system_commands(screen)}
        actions = {action for _, _, action in binding_rows_for(screen, {})}
        assert {"switch_provider", "pick_model", "regenerate", "regenerate_on", "edit_message", "copy_message",
                "copy_code", "continue_reply", "help", "stop", "templates", "stats", "compress"} <= actions
        assert {"Next provider", "Models", "Copy code", "Continue", "Edit & resend", "Help"} <= set(titles)
        await finish_turn(pilot, "question")
        await titles["Copy code"].callback()  # the palette's command runs the same action
        await wait_for(lambda: pilot.app.clipboard == "code here\n", pilot)


async def test_the_chosen_theme_is_used_on_the_next_run(isolated_env, fake_server):
    configure(isolated_env, fake_server.openai_base_url)
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        assert pilot.app.theme != "nord"
        pilot.app.theme = "nord"
        await pilot.pause()
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        assert pilot.app.theme == "nord"


async def test_a_theme_set_in_the_config_afterwards_wins(isolated_env, fake_server):
    configure(isolated_env, fake_server.openai_base_url)
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        pilot.app.theme = "nord"
        await pilot.pause()
    configure(isolated_env, fake_server.openai_base_url, 'theme = "gruvbox"')
    service = ChatService.open(load_settings())
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        assert pilot.app.theme == "gruvbox"
