"""Server-side drift checks: configuration, the check engine, the check endpoints."""
