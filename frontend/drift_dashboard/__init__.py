"""Drift Monitor dashboard: a backend-for-frontend that logs users in with OIDC, keeps their
tokens in server-side sessions and calls the backend REST API on their behalf."""
