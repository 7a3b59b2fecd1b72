import pytest

from app.main import BrowserModeServer, build_api
from tests.conftest import app_page


@pytest.fixture
def server(layout):
    """Browser mode's real server on loopback, with the test's data dir."""
    api, events = build_api("browser", layout)
    server = BrowserModeServer(api, events).start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def page(server, chromium_path, artifacts_dir):
    """Real headless Chromium on browser mode's URL, ready."""
    with app_page(server.config.url, chromium_path) as page:
        yield page
        page.screenshot(path=str(artifacts_dir / "browser-mode.png"))
