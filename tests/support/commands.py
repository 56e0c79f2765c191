"""A PyMongo command listener that keeps the commands of one name on one collection, for
tests that look at what the code sends (filters, sorts) rather than what it gets back."""

from __future__ import annotations

from typing import Any

from pymongo import monitoring


class Commands(monitoring.CommandListener):
    """The ``fields`` of every ``name`` command on ``collection`` (in order, as sent)."""

    def __init__(self, name: str, collection: str, fields: tuple[str, ...]) -> None:
        self.name, self.collection, self.fields = name, collection, fields
        self.seen: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.command_name == self.name and command[self.name] == self.collection:
            self.seen.append({k: command[k] for k in self.fields if k in command})

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass
