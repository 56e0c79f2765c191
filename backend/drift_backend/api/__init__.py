"""HTTP layer: dependencies, the v1 router, health endpoints."""
