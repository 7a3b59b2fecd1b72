import pytest

from app.main import BrowserModeServer, build_api


@pytest.fixture
def server(layout):
    """Browser mode's real server on loopback, with the test's data dir."""
    api, events = build_api("browser", layout)
    server = BrowserModeServer(api, events).start_in_thread()
    yield server
    server.stop()
