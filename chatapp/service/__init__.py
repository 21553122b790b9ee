"""The service tier: `ChatService` is the one door for the CLI and the TUI (DESIGN.md)."""

from chatapp.domain import Target
from chatapp.service.chat_service import ChatService
from chatapp.store.context_records import SummaryRow

__all__ = ["ChatService", "SummaryRow", "Target"]
