"""Local models for ChatService (`chatapp models`, the model picker): list, pull, remove, and the note on the
local default chatapp chose by itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatapp.config import Settings
from chatapp.domain import ProviderKind

if TYPE_CHECKING:
    from chatapp.providers.hub import Progress
    from chatapp.providers.local_catalogue import LocalModel
    from chatapp.pulled_index import PulledModel


class LocalModels:
    settings: Settings

    def local_models(self) -> list[LocalModel]:
        """Every local GGUF chatapp knows: packaged, pulled, configured; header facts and providers."""
        from chatapp.providers.local_catalogue import local_models

        return local_models(self.settings)

    def pull_model(self, ref: str, *, file: str | None = None, progress: Progress | None = None,
                   save: bool = False) -> PulledModel:
        """Download a GGUF from the Hub (blocking; raises PullError with one line). Offered as a provider
        from the next start; `save` also writes its [providers.NAME] block to the config file."""
        from chatapp.providers.hub import pull, save_to_config

        model = pull(self.settings.paths, ref, file=file, progress=progress)
        if save:
            save_to_config(self.settings.source or self.settings.paths.config_file, model)
        return model

    def local_default_note(self) -> str | None:
        """When chatapp chose a local model by itself (no key, no default in the config): which one, and how
        to get a better one. None when the user chose, or the default is not local."""
        name = self.settings.default_provider
        spec = self.settings.providers.get(name) if name else None
        if spec is None or spec.kind is not ProviderKind.LLAMACPP or self.settings.default_explicit:
            return None
        from chatapp.pulled_index import ALIASES, load_index

        pull = f"chatapp models pull {ALIASES[1].name} (or any owner/repo with GGUF files; `chatapp models` lists them)"
        if spec.model_path is None:
            return ("Talking to the packaged demo model, Gemma 3 270M: a tiny base model that continues text and "
                    f"knows little. For a real assistant that still runs offline: {pull}")
        pulled = next((m for m in load_index(self.settings.paths) if m.path == spec.model_path), None)
        if pulled is None:  # a GGUF of the user's own config
            return None
        kind = "an instruction-tuned model" if pulled.has_chat_template else "a base model (it continues text)"
        return f"Talking to {spec.name}, pulled from {pulled.repo}: {kind}, run locally. Another one: {pull}"

    def pulled_model(self, name: str) -> PulledModel:
        """A pulled model by name; raises PullError naming the pulled ones."""
        from chatapp.providers.hub import find_pulled

        return find_pulled(self.settings.paths, name)

    def remove_pulled_model(self, name: str) -> PulledModel:
        """Delete a pulled model's file and forget it; raises PullError with one line."""
        from chatapp.providers.hub import remove

        return remove(self.settings.paths, name)

    def forget_saved_model(self, model: PulledModel) -> str | None:
        """After `remove_pulled_model`: take out the config block `models pull --save` wrote for the model
        (left there, it would stay the default provider with its file gone). The line to tell the user:
        what was removed, or why the block stays; None when there was none. Raises PullError (one line)."""
        from chatapp.providers.saved_block import forget_saved_block

        block = forget_saved_block(self.settings.source or self.settings.paths.config_file, model)
        if block is None:
            return None
        if block.removed:
            return f"removed {block.header} from {block.config_file}"
        return (f"{block.config_file} still has {block.header}, naming the removed file ({block.reason}): "
                "delete that block or point its model_path at another GGUF")
