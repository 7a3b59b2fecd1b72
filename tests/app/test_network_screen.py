"""The Network screen in real Chromium against the real bridge, with a real peer on a loopback testnet."""

import json
import re

import pytest

from app.main import BrowserModeServer, build_api
from backend.config import update_settings
from backend.p2p.synthetic import synthetic_adapter
from backend.p2p.testnet import LoopbackTestnet
from backend.training.adapters import AdapterStore
from tests.app.accessibility import accessibility_problems
from tests.conftest import app_page
from tests.p2p.network import peer_layout, running_peer

HOSTILE_TEXT = '<img src=x onerror="window.__pwned = 1">'

pytestmark = pytest.mark.slow


def test_go_online_join_browse_download_and_create_a_room(layout, base_in_layout, tmp_path, chromium_path, artifacts_dir):
    with LoopbackTestnet(3) as net:
        update_settings({"p2p_bootstrap": net.bootstrap, "p2p_host": "127.0.0.1"}, layout)
        alice_home = peer_layout(tmp_path, base_in_layout)
        synthetic_adapter(alice_home, "friendly", base_in_layout, rank=2)
        manifest_path = AdapterStore(alice_home).path("friendly") / "manifest.json"
        manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "description": HOSTILE_TEXT}))
        api, events = build_api("browser", layout)
        server = BrowserModeServer(api, events).start_in_thread()
        try:
            with running_peer(alice_home, net.bootstrap) as alice, app_page(server.config.url, chromium_path, 1400) as page:
                alice.join_public()
                alice.share("friendly")
                page.click("#nav button[data-screen=network]")
                page.wait_for_selector("[data-testid=network-state]")
                page.click("[data-testid=network-online]")
                page.wait_for_selector("[data-testid=network-state]:has-text('Online')")
                page.click("[data-testid=network-join-public]")
                row = page.wait_for_selector("[data-testid=network-adapter]:has-text('friendly')")
                assert HOSTILE_TEXT in row.inner_text(), "peer text is shown as text"
                assert "by " in row.inner_text() and "shared by" not in row.inner_text(), "first-hand: no separate sharer"
                assert page.evaluate("window.__pwned") is None and page.query_selector("[data-testid=network-adapter] img") is None
                # A locator, not the row handle: peers' catalogs may redraw the table between finding and clicking.
                page.locator("[data-testid=network-adapter]", has_text="friendly").locator(
                    "[data-testid=network-download-button]").click()
                page.wait_for_selector("[data-testid=network-download][data-state=done]")
                page.wait_for_selector("[data-testid=network-adapter]:has-text('friendly') [data-testid=network-downloaded]")
                page.check("[data-testid=network-merge-list] input[value=friendly]")
                page.fill("[data-testid=network-room-name]", "family")
                page.click("[data-testid=network-create-room]")
                page.wait_for_selector("[data-testid=network-invite] code")
                assert page.inner_text("[data-testid=network-invite] code").startswith("om2-")
                assert "family (private)" in page.inner_text("[data-testid=network-rooms]")
                page.context.grant_permissions(["clipboard-read", "clipboard-write"])
                page.click("[data-testid=network-invite-copy]")
                page.wait_for_selector("[data-testid=network-invite-copied]:has-text('Copied.')")
                assert page.evaluate("() => navigator.clipboard.readText()") == page.inner_text("[data-testid=network-invite-code]")
                author = page.inner_text("[data-testid=network-adapter]:has-text('friendly') [data-testid=network-author]")
                assert re.fullmatch(r"by [a-z]+ [a-z]+ · [0-9a-f]{4}", author.strip()), f"a peer is two words, not a hex key: {author}"
                assert page.get_attribute("[data-testid=network-author] [data-key]", "data-key") == alice.public_key
                rooms_before = page.inner_text("[data-testid=network-rooms]")
                page.fill("[data-testid=network-code]", "om2-" + "-".join(["ABCD"] * 8))  # made up
                page.click("[data-testid=network-join-room]")
                page.wait_for_selector("text=typo")
                assert page.inner_text("[data-testid=network-rooms]") == rooms_before, "a bad code creates no room"
                assert page.is_checked("[data-testid=network-merge-list] input[value=friendly]"), \
                    "a refresh keeps what the user ticked for merging"
                page.screenshot(path=str(artifacts_dir / "network-screen.png"), full_page=True)
                assert accessibility_problems(page) == [], "the Network screen with peers, adapters and a download"
        finally:
            api._service().stop()
            server.stop()
    assert AdapterStore(layout).get("friendly").description == HOSTILE_TEXT


def test_merge_two_adapters_from_the_network_screen(layout, base_in_layout, chromium_path, artifacts_dir):
    synthetic_adapter(layout, "left", base_in_layout, rank=2, modules=("q_proj", "v_proj"))
    synthetic_adapter(layout, "right", base_in_layout, rank=2, modules=("q_proj", "v_proj"), seed=1)
    api, events = build_api("browser", layout)
    server = BrowserModeServer(api, events).start_in_thread()
    try:
        with app_page(server.config.url, chromium_path, 1400) as page:
            page.click("#nav button[data-screen=network]")
            page.wait_for_selector("[data-testid=network-merge-list] input[value=right]")
            for name in ("left", "right"):
                page.check(f"[data-testid=network-merge-list] input[value={name}]")
            page.fill("[data-testid=network-merge-name]", "both")
            page.select_option("[data-testid=network-merge-method]", "cat")
            page.click("[data-testid=network-merge]")
            page.wait_for_selector("[data-testid=network-merge-status]:has-text('both ✓')")
    finally:
        api._service().stop()
        server.stop()
    merged = AdapterStore(layout).get("both")
    assert merged.provenance["method"] == "cat" and [s["name"] for s in merged.provenance["sources"]] == ["left", "right"]
    assert merged.rank == 4, "cat stacks the ranks"


def test_a_failed_download_says_why_in_the_users_language(layout, chromium_path):
    """A download that failed (here: recorded by an earlier run) shows its state and error translated."""
    import time

    from backend.p2p.state import DownloadRecord, downloads_file

    downloads_file(layout).save({"a" * 32: DownloadRecord(
        peer="b" * 64, name="friendly", state="failed", entry={}, total=10, started_at=time.time(),
        error="no peer holding this adapter sent any data for 60 s", code="stalled")})
    update_settings({"language": "pt-BR"}, layout)
    api, events = build_api("browser", layout)
    server = BrowserModeServer(api, events).start_in_thread()
    try:
        with app_page(server.config.url, chromium_path) as page:
            page.click("#nav button[data-screen=network]")
            row = page.wait_for_selector("[data-testid=network-download][data-state=failed]")
            assert "falhou" in row.inner_text() and "failed" not in row.inner_text()
            assert "Nenhum par que tem este adaptador enviou dados" in page.inner_text("[data-testid=network-download-error]")
    finally:
        server.stop()
