"""Widgets of the chat screen; each has its styles in a .tcss file next to it."""
