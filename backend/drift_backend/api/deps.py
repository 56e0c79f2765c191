"""FastAPI dependencies as ``Annotated`` aliases, so every route signature looks alike."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from drift_backend.auth.caller import Caller
from drift_backend.auth.identity import Identity
from drift_backend.context import AppContext
from drift_backend.errors import Unauthorized
from drift_backend.settings import Settings
from drift_backend.store.database import Database


async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_settings(context: ContextDep) -> Settings:
    return context.settings


async def get_db(context: ContextDep) -> Database:
    return context.db


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]


#: Only documents the scheme (operations that read a token get ``security`` in OpenAPI);
#: ``get_optional_identity`` parses the header itself, to answer 401 on a malformed one.
bearer_scheme = HTTPBearer(
    auto_error=False, description="An OIDC access token from a trusted issuer."
)
DocumentedBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def get_optional_identity(
    request: Request, context: ContextDep, _documented: DocumentedBearer
) -> Identity | None:
    return await identity_of(request, context)


async def identity_of(request: Request, context: AppContext) -> Identity | None:
    """The caller verified from the ``Authorization`` header (None when there is none);
    the idempotency middleware asks it too, outside the dependency system."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("expected 'Authorization: Bearer <token>'", error="invalid_request")
    if len(token) > 16_384:
        raise Unauthorized("token is too long")
    return await context.verifier.verify(token)


OptionalIdentity = Annotated[Identity | None, Depends(get_optional_identity)]


async def require_identity(identity: OptionalIdentity) -> Identity:
    if identity is None:
        raise Unauthorized("authentication required", error="invalid_request")
    return identity


CurrentIdentity = Annotated[Identity, Depends(require_identity)]


async def get_caller(identity: OptionalIdentity, context: ContextDep) -> Caller:
    if identity is None:
        return Caller(None, None)
    return Caller(identity, await context.users.get(context.db, identity.subject, identity.issuer))


CallerDep = Annotated[Caller, Depends(get_caller)]
