"""Browser tests: Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Every test here is marked `browser`; they are skipped, saying why, only when /usr/bin/chromium
is missing. Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.factories.accounts import PASSWORD
from tests.integration.httpserver import http_server  # noqa: F401 - fixture
from tests.integration.workers import WorkerPool

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(
                    pytest.mark.skip(
                        reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)"
                    )
                )


@pytest.fixture(scope="module")
def browser(django_db_setup):
    """Chromium for one test module (the database is set up first, outside Playwright's loop)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop registered on this thread while it lives;
    # the ORM calls the tests make between browser steps are plain synchronous calls, so
    # Django's async guard would misfire. Allow them only while the browser is up.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context on the live server; a JavaScript error on any page fails the test."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def _browser_worker_pool(django_db_setup):
    """Real Celery workers for this module only, stopped before other test modules run.

    (tests/integration's session-scoped pool would outlive the module and race the worker
    tests of other packages for their tasks.)
    """
    from django.conf import settings

    pool = WorkerPool(log_dir=Path(settings.VAR_DIR) / "test-workers")
    yield pool
    pool.stop()


@pytest.fixture
def celery_workers(_browser_worker_pool, transactional_db):
    """A running worker pool on this test's (committed) data; its queue is empty at start."""
    from operations import plan

    plan.clear_cache()
    if not _browser_worker_pool.alive():
        _browser_worker_pool.start()
    _browser_worker_pool.purge()
    yield _browser_worker_pool
    _browser_worker_pool.purge()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def sign_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def node_center(page, name: str) -> dict:
    center = page.evaluate("name => window.tributaryEditor.renderedCenter(name)", name)
    assert center, f"no node {name!r} on the canvas"
    return center


def open_node(page, name: str) -> None:
    """Open a node's drawer (double-click it on the canvas)."""
    center = node_center(page, name)
    page.mouse.dblclick(center["x"], center["y"])
    page.locator("#node-drawer").wait_for()


def apply_and_save(page) -> None:
    """Apply the node drawer and save the flow (waits until nothing is unsaved)."""
    page.click("[data-testid=node-apply]")
    page.locator("#node-drawer").wait_for(state="hidden")
    page.click("[data-testid=save]")
    page.locator("#dirty-flag").wait_for(state="hidden")


def drag_type_onto_canvas(page, node_type: str, x: float, y: float) -> None:
    """Press on the palette entry, move onto the canvas, release at (x, y) inside it."""
    item = page.locator(f"[data-testid=palette-{node_type}]").bounding_box()
    canvas = page.locator("#cy").bounding_box()
    page.mouse.move(item["x"] + 20, item["y"] + item["height"] / 2)
    page.mouse.down()
    page.mouse.move(canvas["x"] + x, canvas["y"] + y, steps=10)
    page.mouse.up()


def connect(page, upstream: str, downstream: str, *, allowed: bool = True) -> None:
    """Hover the upstream node, drag from the circle on its right edge to the downstream node."""
    start, end = node_center(page, upstream), node_center(page, downstream)
    page.mouse.move(start["x"] - 10, start["y"], steps=2)
    page.mouse.move(start["x"], start["y"], steps=2)
    handle = page.locator("[data-testid=connect-handle]")
    handle.wait_for(state="visible")
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"], end["y"], steps=12)
    if allowed:
        # edgehandles takes the target once the pointer has rested on it (its hover delay).
        page.wait_for_function(
            "name => window.tributaryEditor.cy.$('.eh-target').some(n => n.data('name') === name)",
            arg=downstream,
        )
    page.mouse.up()


def edges(page) -> list[str]:
    return page.evaluate(
        "() => window.tributaryEditor.cy.edges().map(e => e.source().data('name') + '->' + e.target().data('name'))"
    )
