"""The Network screen's bridge methods validate every argument and work offline where they can."""

import pytest

from app.main import build_api


@pytest.fixture
def api(layout):
    api, _events = build_api("test", layout)
    yield api
    api._service().stop()


@pytest.mark.parametrize("method, args", [
    ("network_download", ("../../etc/passwd",)),               # not an entry id
    ("network_download", ("a" * 16,)),                         # a prefix: the UI sends whole ids
    ("network_download", ("a" * 32, "../evil")),              # not an adapter name
    ("network_join_room", ("short",)),                         # not an invite code
    ("network_leave_room", ("../x",)),
    ("network_block", ("zz" * 32,)),
    ("adapters_merge", (["a"], "merged")),                     # fewer than two
    ("adapters_merge", (["a", "b"], "m", "average")),          # unknown method
])
def test_bad_arguments_are_refused(api, method, args):
    answer = getattr(api, method)(*args)
    assert answer["ok"] is False and answer["error"]["code"] == "invalid_argument", answer


def test_rooms_work_offline_and_transfers_say_go_online(api):
    status = api.network_status()["data"]
    assert status["online"] is False and status["rooms"] == [] and len(status["public_key"]) == 64
    assert api.network_join_public()["data"]["id"] == "public"
    created = api.network_create_room("family")["data"]
    assert created["invite_code"].startswith("om2-") and created["kind"] == "private"
    made_up = api.network_join_room("om2-" + "-".join(["ABCD"] * 8))
    assert made_up["ok"] is False and made_up["error"]["code"] == "bad_invite" and "typo" in made_up["error"]["message"]
    assert {r["id"] for r in api.network_status()["data"]["rooms"]} == {"public", created["id"]}, "no room from a bad code"
    answer = api.network_browse(False)
    assert answer["ok"] is False and answer["error"]["code"] == "offline"
    offline = api.network_go_offline()
    assert offline["ok"] is True and offline["data"]["online"] is False and "rooms" in offline["data"]
