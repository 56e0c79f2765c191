"""Account: who am I (the backend's view), my entitlements, and a client snippet."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from drift_dashboard.deps import ApiDep, ContextDep, LoggedInDep
from drift_dashboard.templating import render

router = APIRouter()


def client_snippet(server_url: str) -> str:
    return "\n".join(
        [
            "# In your shell (a token from your identity provider, MyToken or oidc-agent;",
            "# see docs/client.md):",
            f"export DRIFT_MONITOR_URL={server_url}",
            "export DRIFT_MONITOR_TOKEN=...",
            "",
            "# In your job:",
            "from drift_monitor import DriftMonitor",
            "",
            'with DriftMonitor("my-experiment", "model-1") as monitor:',
            '    monitor.data(drift_found, {"psi": psi_per_feature})',
            "    report = monitor.check(today_df)  # server-side tests against a baseline",
        ]
    )


@router.get("/account")
async def account(
    request: Request, context: ContextDep, api: ApiDep, user: LoggedInDep
) -> Response:
    me = await api.get("/user/self")
    entitlements = (await api.get("/entitlement"))["items"]
    return render(
        request,
        "account/index.html",
        title="Account",
        me=me,
        entitlements=entitlements,
        snippet=client_snippet(context.settings.client_url),
    )
