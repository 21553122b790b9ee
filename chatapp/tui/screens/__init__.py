"""The TUI's screens: the chat, and the modal screens it opens."""
