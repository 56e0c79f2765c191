"""Event streams: run and check events kept for a while (``events``, TTL) and served as
Server-Sent Events at ``GET /api/v1/events``, with replay after ``Last-Event-ID``."""
