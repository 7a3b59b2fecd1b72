"""Peers on a real Hyperswarm testnet on loopback: share, browse, download, verify, import, deploy.

Every peer is a real P2PService with its own data dir and its own Node sidecar; every DHT node
binds 127.0.0.1 (see tests/p2p/network.py), so no traffic leaves this machine.
"""

import json
import os
import signal
import subprocess

import ollama
import pytest

from backend.errors import NotFoundError
from backend.p2p.node_runtime import node_executable
from backend.p2p.rooms import PUBLIC_ROOM_SECRET
from backend.p2p.synthetic import synthetic_adapter
from backend.p2p.testnet import LoopbackTestnet
from backend.training.adapters import AdapterStore
from backend.training.deploy import deploy_adapter
from tests.p2p.network import offer_id, peer_layout, running_peer, sees_adapter, train_adapter

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def testnet():
    with LoopbackTestnet(3) as net:
        assert all(address.startswith("127.0.0.1:") for address in net.bootstrap)
        yield net


@pytest.fixture
def make_layout(tmp_path, shared_base):
    return lambda: peer_layout(tmp_path, shared_base)


def wait_progress(service, download_id, minimum=1, timeout=60):
    return service.wait_for(lambda: getattr(service.downloads.get(download_id), "blocks", 0) >= minimum, timeout)


def test_three_peers_share_browse_download_verify_import_deploy(testnet, make_layout, engine):
    alice_home, bob_home, carol_home = make_layout(), make_layout(), make_layout()
    trained = train_adapter(alice_home, "pirate-voice", "Arr matey")
    with running_peer(alice_home, testnet.bootstrap) as alice, running_peer(bob_home, testnet.bootstrap) as bob, \
            running_peer(carol_home, testnet.bootstrap) as carol:
        for peer in (alice, bob, carol):
            peer.join_public()
        shared = alice.share("pirate-voice")
        assert shared["rooms"] == ["public"] and shared["bytes"] == sum(f["size"] for f in trained.files.values())
        for peer in (bob, carol):
            assert peer.wait_for(lambda p=peer: sees_adapter(p, "pirate-voice", alice.public_key), 30)
        row = next(r for r in bob.browse(compatible_only=True) if r["name"] == "pirate-voice")
        assert row["first_hand"] and row["author"] == alice.public_key and row["compatible"]
        assert row["base"]["sha256"] == trained.base["sha256"] and row["rank"] == 4
        assert "/" not in json.dumps(row["base"]), "no local paths leave the machine"

        download_id = bob.download(row["id"])
        record = bob.wait_download(download_id, 120)
        assert record.state == "done", record
        received = AdapterStore(bob_home).get("pirate-voice")
        assert received.files == trained.files and received.provenance["downloaded_from"] == alice.public_key
        assert received.provenance["author"] == alice.public_key
        assert not any(bob_home.staging_dir.iterdir()), "staging is emptied once the adapter moved into the store"

        deployed = deploy_adapter(ollama.Client(host=engine.host), bob_home, "pirate-voice", "bob-pirate")
        assert deployed["smoke"]["adapted"] != deployed["smoke"]["base"]

        assert {p["peer"] for p in carol.peers()} >= {alice.public_key, bob.public_key}
        assert all(r["author"] == alice.public_key for r in carol.browse())


def test_a_peer_leaving_mid_download_another_serves_the_rest(testnet, make_layout, shared_base):
    alice_home, carol_home, dave_home = make_layout(), make_layout(), make_layout()
    synthetic_adapter(alice_home, "big", shared_base, rank=64)  # ~78 MB, 299 blocks
    with running_peer(carol_home, testnet.bootstrap) as carol, running_peer(dave_home, testnet.bootstrap) as dave:
        with running_peer(alice_home, testnet.bootstrap) as alice:
            for peer in (alice, carol, dave):
                peer.join_public()
            alice.share("big")
            assert carol.wait_for(lambda: sees_adapter(carol, "big"), 30)
            assert carol.wait_download(carol.download(offer_id(carol, "big")), 120).state == "done"
            assert dave.wait_for(lambda: sees_adapter(dave, "big", alice.public_key), 30)
            download_id = dave.download(offer_id(dave, "big", alice.public_key))
            assert wait_progress(dave, download_id)
            dave.pause(download_id)
            partial = dave.downloads.get(download_id)
            assert 0 < partial.blocks < partial.total, partial
        # Alice has left. Carol, who downloaded it before, serves the rest, from her files (she got it on
        # the direct channel, so her corestore has no blocks of it), also after a restart of her own.
        assert dave.wait_for(lambda: alice.public_key not in {p["peer"] for p in dave.peers()}, 30)
        carol.stop()
        carol.start()
        assert dave.wait_for(lambda: carol.public_key in {p["peer"] for p in dave.peers()}, 60)
        dave.resume(download_id)
        assert dave.wait_download(download_id, 120).state == "done"
        assert AdapterStore(dave_home).get("big").files == AdapterStore(alice_home).get("big").files


def corestore_bytes(layout) -> int:
    return sum(p.stat().st_size for p in layout.corestore_dir.rglob("*") if p.is_file())


def test_a_download_comes_straight_from_the_holders_files_and_a_bad_copy_falls_back_to_hypercore(
        testnet, make_layout, shared_base):
    alice_home, bob_home = make_layout(), make_layout()
    for seed, name in enumerate(("straight", "spoilt")):
        synthetic_adapter(alice_home, name, shared_base, rank=16, seed=seed)  # ~20 MB each
    size = sum(f["size"] for f in AdapterStore(alice_home).get("spoilt").files.values())
    with running_peer(alice_home, testnet.bootstrap) as alice, running_peer(bob_home, testnet.bootstrap) as bob:
        alice.join_public()
        bob.join_public()
        alice.share("straight")
        alice.share("spoilt")
        assert bob.wait_for(lambda: sees_adapter(bob, "straight") and sees_adapter(bob, "spoilt"), 60)
        before = corestore_bytes(bob_home)
        assert bob.wait_download(bob.download(offer_id(bob, "straight")), 120).state == "done"
        assert corestore_bytes(bob_home) - before < size / 4, "the bytes skipped Hypercore's storage"
        assert AdapterStore(bob_home).get("straight").files == AdapterStore(alice_home).get("straight").files
        # Alice's file changes on disk after she shared it (same size): what she sends directly no longer
        # matches the signed hashes, so Bob takes Hypercore's blocks, each checked against the signed tree.
        spoilt = AdapterStore(alice_home).path("spoilt") / "adapter_model.safetensors"
        data = bytearray(spoilt.read_bytes())
        data[-1000] ^= 0xFF
        spoilt.write_bytes(bytes(data))
        before = corestore_bytes(bob_home)
        record = bob.wait_download(bob.download(offer_id(bob, "spoilt")), 120)
        assert record.state == "done", record
        assert corestore_bytes(bob_home) - before > size / 2, "the fallback went through Hypercore"
        assert AdapterStore(bob_home).get("spoilt").files == AdapterStore(alice_home).get("spoilt").files
        assert (AdapterStore(bob_home).path("spoilt") / "adapter_model.safetensors").read_bytes() != bytes(data)


def test_a_download_survives_crashes_of_both_sidecars(testnet, make_layout, shared_base):
    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "big", shared_base, rank=64)
    with running_peer(alice_home, testnet.bootstrap) as alice, running_peer(bob_home, testnet.bootstrap) as bob:
        alice.join_public()
        bob.join_public()
        alice.share("big")
        assert bob.wait_for(lambda: sees_adapter(bob, "big"), 30)
        download_id = bob.download(offer_id(bob, "big"))
        assert wait_progress(bob, download_id)
        for victim in (alice, bob):  # kill -9: no clean shutdown, the client must notice and restart
            os.kill(victim._sidecar.pid, signal.SIGKILL)
        assert bob.wait_download(download_id, 180).state == "done"
        assert alice._sidecar.restart_count == 1 and bob._sidecar.restart_count == 1
        assert AdapterStore(bob_home).get("big").files == AdapterStore(alice_home).get("big").files


def test_a_download_resumes_after_the_app_restarts(testnet, make_layout, shared_base):
    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "big", shared_base, rank=64)
    with running_peer(alice_home, testnet.bootstrap) as alice:
        alice.join_public()
        alice.share("big")
        with running_peer(bob_home, testnet.bootstrap) as bob:
            bob.join_public()
            assert bob.wait_for(lambda: sees_adapter(bob, "big"), 30)
            download_id = bob.download(offer_id(bob, "big"))
            assert wait_progress(bob, download_id)
            before = bob.downloads.get(download_id).blocks
        with running_peer(bob_home, testnet.bootstrap) as bob_again:  # rooms and the download are replayed
            assert bob_again.wait_download(download_id, 120).state == "done"
    assert before > 0 and AdapterStore(bob_home).get("big").name == "big"


def test_private_rooms_are_invisible_to_outsiders(testnet, make_layout, shared_base):
    alice_home, bob_home, eve_home = make_layout(), make_layout(), make_layout()
    synthetic_adapter(alice_home, "secret", shared_base, rank=2)
    synthetic_adapter(alice_home, "open", shared_base, rank=2, seed=1)
    with running_peer(alice_home, testnet.bootstrap) as alice, running_peer(bob_home, testnet.bootstrap) as bob, \
            running_peer(eve_home, testnet.bootstrap) as eve:
        for peer in (alice, bob, eve):
            peer.join_public()
        room, code = alice.create_room("friends")
        assert len(code.replace("-", "")) - 3 >= 26, "at least 128 bits"
        bob.join_room(code)
        alice.share("secret", rooms=[room.id])
        alice.share("open", rooms=["public"])
        assert bob.wait_for(lambda: sees_adapter(bob, "secret") and sees_adapter(bob, "open"), 30)
        assert eve.wait_for(lambda: sees_adapter(eve, "open"), 30)
        assert not sees_adapter(eve, "secret")
        alice_seen_by_eve = next(p for p in eve.peers() if p["peer"] == alice.public_key)
        assert alice_seen_by_eve["rooms"] == ["public"]
        with pytest.raises(NotFoundError):
            eve.download(offer_id(bob, "secret"))
        eve.block(alice.public_key)  # the firewall hook
        assert eve.wait_for(lambda: alice.public_key not in {p["peer"] for p in eve.peers()}, 30)


def test_an_unproven_peer_cannot_push_a_catalog_and_a_flooding_peer_is_dropped(testnet, make_layout, tmp_path):
    with running_peer(make_layout(), testnet.bootstrap) as bob:
        misbehaved = []
        bob.subscribe(lambda event: misbehaved.append(event) if event.get("event") == "peer-misbehaved" else None)
        bob.join_public()
        port = testnet.bootstrap[0].split(":")[1]
        hostile = subprocess.Popen([str(node_executable()), "tests/p2p/hostile_peer.js", "unsolicited", port, PUBLIC_ROOM_SECRET,
                                    str(tmp_path / "hostile-store")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            hostile_key = json.loads(hostile.stdout.readline())["ready"]
            sent = [json.loads(hostile.stdout.readline()) for _ in range(2)]
            assert [s["sent"] for s in sent] == ["unsolicited-catalog", "oversized"]
            assert bob.wait_for(lambda: bool(misbehaved), 30)
        finally:
            hostile.stdin.close()
            hostile.wait(timeout=30)
        assert misbehaved[0]["peer"] == hostile_key and "too large" in misbehaved[0]["reason"]
        assert bob.browse() == [], "the unsolicited catalog was ignored"


def crafted(hostile, base_entry, *, name, forge=False, **manifest_changes):
    """A catalog entry a hostile peer makes up: signed with its own key unless ``forge``."""
    from backend.p2p.catalog import canonical

    body = json.loads(json.dumps({k: base_entry[k] for k in ("v", "manifest", "transfer", "author")}))
    body["manifest"].update(name=name, **manifest_changes)
    body["transfer"]["byte_length"] = sum(f["size"] for f in body["manifest"]["files"].values())
    signature = base_entry["signature"] if forge else hostile.identity.sign(canonical(body))
    return {**body, "signature": signature}


def test_hostile_catalogs_and_transfers_are_rejected_and_nothing_is_written(testnet, make_layout, shared_base):
    import numpy as np
    from safetensors.numpy import save_file

    mallory_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(mallory_home, "good", shared_base, rank=2)
    nan_dir = mallory_home.root / "nan-src"
    nan_dir.mkdir()
    module = "base_model.model.model.layers.0.self_attn.q_proj"
    save_file({f"{module}.lora_A.weight": np.full((2, 576), np.nan, np.float32),
               f"{module}.lora_B.weight": np.zeros((576, 2), np.float32)}, str(nan_dir / "adapter_model.safetensors"))
    (nan_dir / "adapter_config.json").write_text(json.dumps({"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}))
    good = AdapterStore(mallory_home).get("good")
    AdapterStore(mallory_home).save("nan", nan_dir, None, {"base": good.base, "rank": 2, "alpha": 4, "target_modules": ["q_proj"]})

    with running_peer(mallory_home, testnet.bootstrap) as mallory, running_peer(bob_home, testnet.bootstrap) as bob:
        mallory.join_public()
        bob.join_public()
        mallory.share("good")
        mallory.share("nan")
        shares = mallory.shares.records()
        entry = shares["good"].entry
        files = entry["manifest"]["files"]
        wrong_hash = {**files, "adapter_model.safetensors": {**files["adapter_model.safetensors"], "sha256": "0" * 64}}
        size_lie = {**files, "adapter_config.json": {**files["adapter_config.json"], "size": files["adapter_config.json"]["size"] - 10}}
        hostile = [
            crafted(mallory, entry, name="forged", forge=True),  # altered after signing
            crafted(mallory, entry, name="traversal", files={**files, "../../evil.sh": files["adapter_config.json"]}),
            crafted(mallory, entry, name="pickle", files={**files, "adapter_model.bin": files["adapter_config.json"]}),
            crafted(mallory, entry, name="oversized", files={**files, "adapter_model.safetensors": {"sha256": "0" * 64, "size": 10**12}}),
            crafted(mallory, entry, name="bad-hash", files=wrong_hash),
            crafted(mallory, entry, name="size-lie", files=size_lie),
            shares["nan"].entry,
        ]
        mallory._call("set_catalog", items=[{"rooms": ["public"], "entry": e} for e in hostile])

        assert bob.wait_for(lambda: sees_adapter(bob, "nan"), 30)
        seen = {row["name"] for row in bob.browse()}
        assert seen == {"bad-hash", "size-lie", "nan"}, "forged, traversal, pickle and oversized entries never list"
        assert next(p for p in bob.peers() if p["peer"] == mallory.public_key)["rejected"] == 4
        failures = {}
        for name in ("bad-hash", "size-lie", "nan"):
            record = bob.wait_download(bob.download(offer_id(bob, name)), 60)
            assert record.state == "failed"
            failures[name] = record.error
        assert "does not match its hash" in failures["bad-hash"]
        assert "signed entry says" in failures["size-lie"], failures["size-lie"]
        assert "NaN" in failures["nan"]
    assert AdapterStore(bob_home).list() == [] and not any(bob_home.adapters_dir.iterdir())
    assert not any(bob_home.staging_dir.iterdir()), "failed downloads leave nothing staged"
    assert not list(bob_home.root.parent.rglob("evil.sh"))


def test_the_cli_joins_browses_and_downloads(testnet, make_layout, shared_base, monkeypatch):
    from click.testing import CliRunner

    from backend.cli import main
    from backend.config import update_settings

    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "shared-one", shared_base, rank=2)
    monkeypatch.setenv("ORCH_MIND_HOME", str(bob_home.root))
    update_settings({"p2p_bootstrap": testnet.bootstrap, "p2p_host": "127.0.0.1"}, bob_home)
    runner = CliRunner()
    with running_peer(alice_home, testnet.bootstrap) as alice:
        alice.join_public()
        alice.share("shared-one")
        assert runner.invoke(main, ["p2p", "browse"]).exit_code != 0, "no room joined yet: a usage error"
        joined = runner.invoke(main, ["p2p", "rooms", "join", "public"])
        assert joined.exit_code == 0 and "Community" in joined.output
        created = runner.invoke(main, ["p2p", "rooms", "create", "book-club"])
        assert created.exit_code == 0 and "om2-" in created.output
        listed = runner.invoke(main, ["p2p", "browse", "--json", "--wait", "3"])
        assert listed.exit_code == 0, listed.output
        rows = json.loads(listed.output)
        assert [(r["name"], r["peer"]) for r in rows] == [("shared-one", alice.public_key)]
        fetched = runner.invoke(main, ["p2p", "download", rows[0]["id"][:16], "--as", "from-alice"])
        assert fetched.exit_code == 0, fetched.output
    assert AdapterStore(bob_home).get("from-alice").files == AdapterStore(alice_home).get("shared-one").files


def test_a_second_network_on_the_same_data_dir_is_refused_clearly(testnet, make_layout):
    from backend.p2p.sidecar import SidecarError

    home = make_layout()
    with running_peer(home, testnet.bootstrap):
        with pytest.raises(SidecarError, match="in use by another Orch-Mind"):
            with running_peer(home, testnet.bootstrap):
                pass


def test_state_from_an_older_version_or_a_deleted_adapter_does_not_keep_the_network_off(testnet, make_layout):
    from backend.p2p.state import P2PStateError, downloads_file

    home = make_layout()
    home.p2p_file("shares").write_text(json.dumps({"gone": {"core_name": "adapter/gone/1", "rooms": ["public"], "entry": {}}}))
    old_entry = {"v": 1, "manifest": {}, "transfer": {}, "author": "a" * 64, "signature": "b" * 128}
    home.p2p_file("downloads").write_text(json.dumps({"c" * 32: {
        "peer": "a" * 64, "name": "old", "state": "active", "entry": old_entry, "total": 3, "started_at": 0}}))
    with running_peer(home, testnet.bootstrap) as service:
        assert service.my_shares() == [], "the share of a deleted adapter is dropped"
        [record] = service.list_downloads()
        assert record["state"] == "failed" and "version" in record["error"]
    home.p2p_file("downloads").write_text('{"x": {"state": "exploded"}}')
    with pytest.raises(P2PStateError, match="downloads.json is damaged.*move it aside"):
        downloads_file(home).load()


def test_an_honest_peer_in_many_rooms_is_never_taken_for_a_flood(testnet, make_layout, shared_base):
    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "many-rooms", shared_base, rank=2)
    with running_peer(alice_home, testnet.bootstrap) as alice, running_peer(bob_home, testnet.bootstrap) as bob:
        dropped = []
        bob.subscribe(lambda e: dropped.append(e) if e.get("event") == "peer-misbehaved" else None)
        alice.join_public()
        bob.join_public()
        alice.share("many-rooms")
        assert bob.wait_for(lambda: sees_adapter(bob, "many-rooms", alice.public_key), 60)
        codes = [alice.create_room(f"room {i}")[1] for i in range(30)]  # 30 proofs broadcasts in a row
        bob.join_room(codes[-1])
        for _ in range(10):
            alice.unshare("many-rooms")
            alice.share("many-rooms")  # and a burst of catalog changes
        assert bob.wait_for(lambda: any(len(p["rooms"]) == 2 for p in bob.peers() if p["peer"] == alice.public_key), 60)
        assert not dropped, dropped
    with running_peer(alice_home, testnet.bootstrap) as alice_again, running_peer(bob_home, testnet.bootstrap) as bob_again:
        dropped = []
        bob_again.subscribe(lambda e: dropped.append(e) if e.get("event") == "peer-misbehaved" else None)
        assert bob_again.wait_for(lambda: sees_adapter(bob_again, "many-rooms", alice_again.public_key), 60), "a restart replays 31 rooms"
        assert not dropped, dropped
