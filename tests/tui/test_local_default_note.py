"""The welcome notice says which local model chatapp chose by itself, and how to pull a better one."""

from chatapp.config import load_settings
from chatapp.pulled_index import PulledModel, save_index
from chatapp.service import ChatService
from chatapp.tui.app import ChatApp
from chatapp.tui.screens.chat import ChatScreen
from chatapp.tui.widgets.message import NoticeMessage


def _notes(screen) -> list[str]:
    return [str(notice.render()) for notice in screen.query(NoticeMessage)]


async def test_a_pulled_default_is_named_once_with_how_to_pull_another(isolated_env):
    path = isolated_env.data_dir / "models" / "hub" / "o" / "tiny-it" / "tiny-it-Q4_K_M.gguf"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"GGUF")
    save_index(isolated_env, [PulledModel("tiny-it", "o/tiny-it", path.name, str(path), 10**9, "Q4_K_M",
                                          32768, True)])
    service = ChatService.open(load_settings())
    assert service.default_provider == "tiny-it"
    async with ChatApp(service, service.target_for(None)).run_test() as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, ChatScreen)
        [note] = [text for text in _notes(screen) if "Talking to" in text]
        assert "tiny-it, pulled from o/tiny-it" in note and "chatapp models pull" in note
        screen.load_conversation(None)  # a new conversation: told once is enough
        await pilot.pause(0.1)
        assert not [text for text in _notes(screen) if "Talking to" in text]
