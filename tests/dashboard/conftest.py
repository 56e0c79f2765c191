"""A real stack for the dashboard tests: the backend and the dashboard on one origin (the
same dispatcher ``make run`` serves) over uvicorn, on the session's SecantusDB and OIDC
provider, plus a headless Debian chromium driven by Playwright."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from drift_backend.devstack.services import ManagedProcess, fetch_token, free_port
from drift_backend.main import create_app as create_backend
from drift_dashboard.app import create_app as create_dashboard
from drift_dashboard.dispatch import SameOriginDispatcher
from drift_dashboard.sessions import COLLECTION
from drift_dashboard.settings import DashboardSettings, load_settings
from pymongo import MongoClient

from tests.conftest import make_settings
from tests.support.threads import ThreadedServer

CHROMIUM = Path("/usr/bin/chromium")
ASSETS = Path(__file__).resolve().parents[2] / "frontend" / "node_modules"
AXE = ASSETS / "axe-core" / "axe.min.js"


@dataclass
class Stack:
    url: str
    issuer: str
    settings: DashboardSettings
    mongodb_url: str
    database: str
    #: The backend's FastAPI app (its event hub, for the relay tests).
    backend: Any = None
    #: Experiments made for the tests: name -> API document.
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sessions(self) -> list[dict[str, Any]]:
        client: MongoClient[dict[str, Any]]
        with MongoClient(self.mongodb_url) as client:
            return list(client[self.database][COLLECTION].find())

    def token(self, subject: str) -> str:
        answer = fetch_token(self.issuer, subject, client_secret="test-client-secret")
        return str(answer["access_token"])

    def create(self, owner: str, name: str, *, public: bool = False) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token(owner)}"}
        with httpx2.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=30) as http:
            registered = http.post("/user")
            assert registered.status_code in (201, 409), registered.text
            made = http.post("/experiment", json={"name": name, "public": public})
            assert made.status_code == 201, made.text
            doc: dict[str, Any] = made.json()
        self.experiments[name] = doc
        return doc


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, mongodb: ManagedProcess, oidc_provider: ManagedProcess
) -> Iterator[Stack]:
    # A module that runs server-side checks sets EMBEDDED_WORKER = True (a worker's process
    # pool takes seconds to start: only where it is needed); BACKEND_SETTINGS holds any other
    # backend settings a module needs (a small stream limit, say).
    backend_settings = make_settings(
        mongodb,
        [oidc_provider.url],
        embedded_worker=getattr(request.module, "EMBEDDED_WORKER", False),
        **getattr(request.module, "BACKEND_SETTINGS", {}),
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = load_settings(
        mode="development",
        public_url=url,
        api_url=url,
        issuer=oidc_provider.url,
        client_id="drift-dashboard-test",
        client_secret="test-client-secret",
        mongodb_url=mongodb.url,
        mongodb_database=backend_settings.mongodb_database,
    )
    backend = create_backend(backend_settings)
    app = SameOriginDispatcher(backend, create_dashboard(settings))
    with ThreadedServer(app, port=port):
        yield Stack(
            url=url,
            issuer=oidc_provider.url,
            settings=settings,
            mongodb_url=mongodb.url,
            database=backend_settings.mongodb_database,
            backend=backend,
        )
    client: MongoClient[dict[str, Any]]
    with MongoClient(mongodb.url) as client:
        client.drop_database(backend_settings.mongodb_database)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


class Visitor:
    """A browser context of its own (cookies), with the console collected (CSP complaints).

    ``javascript=False`` checks the pages without scripts; ``bypass_csp`` only for axe-core,
    which the tests inject as an inline script."""

    def __init__(
        self, browser: Any, stack: Stack, *, javascript: bool = True, bypass_csp: bool = False
    ) -> None:
        self.stack = stack
        self.context = browser.new_context(java_script_enabled=javascript, bypass_csp=bypass_csp)
        # The development provider's login page pulls a stylesheet from a CDN: not needed.
        self.context.route("https://**", lambda route: route.abort())
        # Marks when htmx's event stream is open (an init script: not subject to the CSP).
        self.context.add_init_script(
            "document.addEventListener('htmx:sseOpen', () => { window.__sseOpen = true; });"
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))

    def goto(self, path: str) -> Any:
        return self.page.goto(self.stack.url + path)

    def login(self, subject: str) -> None:
        """Through the development provider's form, back to the experiments list."""
        self.goto("/login?next=/experiments")
        assert self.page.url.startswith(self.stack.issuer)
        self.page.locator(f'button[name="sub"][value="{subject}"]').click()
        self.page.wait_for_url(f"{self.stack.url}/experiments")

    def cookies(self) -> dict[str, str]:
        """The browser's cookies, for plain HTTP requests as this visitor."""
        return {c["name"]: c["value"] for c in self.context.cookies()}

    def wait_for_live_updates(self) -> None:
        """Until the page's event stream is open: a first connection replays nothing, so a
        change made before would not be seen."""
        self.page.wait_for_function("() => window.__sseOpen === true")

    def csp_violations(self) -> list[str]:
        return [text for text in self.console if "Content Security Policy" in text]

    def axe_serious(self) -> list[Any]:
        """axe-core's serious and critical violations on the current page."""
        self.page.add_script_tag(path=str(AXE))
        result = self.page.evaluate("async () => await axe.run(document)")
        return [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitor(browser: Any, stack: Stack) -> Iterator[Visitor]:
    made = Visitor(browser, stack)
    yield made
    made.close()


@pytest.fixture
def alice(browser: Any, stack: Stack) -> Iterator[Visitor]:
    made = Visitor(browser, stack)
    made.login("alice")
    yield made
    made.close()
