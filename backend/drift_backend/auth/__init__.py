"""Bearer-token authentication against trusted OIDC issuers, and experiment permissions."""
