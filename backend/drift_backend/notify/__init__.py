"""Notifications: where alerts go (targets) and their durable delivery (the outbox)."""
