"""Hostile peers on a real loopback testnet against a running app peer.

Each attacker is either tests/p2p/hostile_peer.js (plain hyperswarm/hypercore, not our sidecar) or a
P2PService whose catalog is hand-crafted. Every test asserts that the app peer drops the attacker,
keeps serving a well-behaved peer, stays within its memory, and writes nothing outside staging.
Every DHT node binds 127.0.0.1.
"""

import json
import subprocess
from pathlib import Path

import pytest

from backend.p2p.catalog import canonical, verify_entry
from backend.p2p.node_runtime import node_executable
from backend.p2p.rooms import PUBLIC_ROOM_SECRET
from backend.p2p.synthetic import synthetic_adapter
from backend.p2p.testnet import LoopbackTestnet
from backend.p2p.verify import VerificationError
from backend.training.adapters import AdapterStore
from tests.p2p.network import offer_id, peer_layout, running_peer, sees_adapter

pytestmark = pytest.mark.slow
FAST_LIMITS = {"partialFrameMs": 3000, "sweepMs": 500}


@pytest.fixture(scope="module")
def testnet():
    with LoopbackTestnet(3) as net:
        yield net


@pytest.fixture
def make_layout(tmp_path, shared_base):
    return lambda: peer_layout(tmp_path, shared_base)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Hostile:
    def __init__(self, mode, testnet, storage, seconds=10, entry_file=None):
        port = testnet.bootstrap[0].split(":")[1]
        self.process = subprocess.Popen([str(node_executable()), "tests/p2p/hostile_peer.js", mode, port, PUBLIC_ROOM_SECRET,
                                         str(storage), str(seconds), *([str(entry_file)] if entry_file else [])],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.key = json.loads(self.process.stdout.readline())["ready"]

    def next_line(self):
        return json.loads(self.process.stdout.readline())

    def close(self):
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def files_in(home) -> set[str]:
    from backend.inference.model_store import ModelStore

    ModelStore(home).register_defaults()  # done at the app's first start; not a write the network caused
    return {str(path.relative_to(home.root)) for path in home.root.rglob("*") if not path.is_dir()}


def written_outside_staging(home, before: set[str], downloaded: str) -> set[str]:
    """Files that appeared anywhere in the data dir, at any depth, other than where the network may
    write: its own state and corestore, staging, the log, and the adapter the user chose to download."""
    allowed = (f"{home.p2p_dir.name}/", f"{home.staging_dir.name}/", f"{home.logs_dir.name}/",
               f"{home.adapters_dir.name}/{downloaded}/")
    return {path for path in files_in(home) - before if not path.startswith(allowed)}


def watch_misbehaviour(service):
    dropped = []
    service.subscribe(lambda e: dropped.append(e) if e.get("event") == "peer-misbehaved" else None)
    return dropped


def still_serves(bob, alice, name="kind"):
    """A well-behaved peer still gets through: Bob sees Alice's adapter and downloads it."""
    assert bob.wait_for(lambda: sees_adapter(bob, name, alice.public_key), 60)
    record = bob.wait_download(bob.download(offer_id(bob, name, alice.public_key)), 120)
    assert record.state == "done", record


@pytest.fixture
def alice_and_bob(testnet, make_layout, shared_base):
    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "kind", shared_base, rank=2)
    with running_peer(alice_home, testnet.bootstrap) as alice, \
            running_peer(bob_home, testnet.bootstrap, peer_limits=FAST_LIMITS) as bob:
        alice.join_public()
        alice.share("kind")
        bob.join_public()
        yield alice, bob, bob_home


@pytest.mark.parametrize("mode, reason", [("deep", "nested too deeply"), ("proof-flood", "too many messages"),
                                          ("catalog-flood", "too many bytes"),
                                          ("huge-frame", "frame"), ("slow-frame", "did not arrive in time"),
                                          ("want-flood", "too many wants"), ("stray-blocks", "nobody asked for"),
                                          ("stray-zero", "nobody asked for"), ("bad-want", "does not decode")])
def test_a_hostile_peer_is_dropped_and_a_well_behaved_one_still_served(alice_and_bob, testnet, tmp_path, mode, reason):
    alice, bob, bob_home = alice_and_bob
    dropped = watch_misbehaviour(bob)
    idle_rss = rss_mb(bob.sidecar_pid)
    before = files_in(bob_home)
    hostile = Hostile(mode, testnet, tmp_path / "hostile", seconds=10)
    try:
        assert bob.wait_for(lambda: any(d["peer"] == hostile.key for d in dropped), 60), f"{mode} was not dropped"
        flood_rss = rss_mb(bob.sidecar_pid)
    finally:
        hostile.close()
    reasons = [d["reason"] for d in dropped if d["peer"] == hostile.key]
    assert any(reason in r for r in reasons), reasons
    assert len(reasons) <= 3, f"one drop per connection, not one per buffered message ({len(reasons)})"
    assert flood_rss - idle_rss < 100, f"sidecar grew {flood_rss - idle_rss:.0f} MB under {mode}"
    assert bob._sidecar.restart_count == 0 and bob._sidecar.reader_failures == 0
    assert hostile.key not in {p["peer"] for p in bob.peers()}
    still_serves(bob, alice)
    assert written_outside_staging(bob_home, before, "kind") == set()


def crafted(mallory, base_entry, **transfer_changes):
    """An entry Mallory signs herself, describing a core other than the one her files came from."""
    body = json.loads(json.dumps({k: base_entry[k] for k in ("v", "manifest", "transfer", "author")}))
    body["transfer"].update(transfer_changes)
    return {**body, "signature": mallory.identity.sign(canonical(body))}


def corestore_bytes(layout):
    return sum(p.stat().st_size for p in layout.corestore_dir.rglob("*") if p.is_file())


def test_fat_blocks_and_a_short_core_fail_before_fetching_and_leave_nothing(testnet, make_layout, shared_base, tmp_path):
    mallory_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(mallory_home, "bait", shared_base, rank=2)
    fat = tmp_path / "fat.bin"
    fat.write_bytes(b"\x01" * (16 << 20))
    with running_peer(mallory_home, testnet.bootstrap) as mallory, \
            running_peer(bob_home, testnet.bootstrap, stall_seconds=5) as bob:
        mallory.join_public()
        bob.join_public()
        mallory.share("bait")
        honest = mallory.shares.records()["bait"].entry
        fat_core = mallory._call("seed", name="fat", files=[str(fat)], blockSize=4 << 20)  # 4 blocks of 4 MiB
        short_core = mallory._call("seed", name="short", files=[str(fat)], blockSize=8 << 20)  # 2 blocks
        entries = [
            crafted(mallory, honest, core=fat_core["key"], tree_hash=fat_core["treeHash"]),  # small entry, fat core
            crafted(mallory, honest, core=short_core["key"], tree_hash=short_core["treeHash"],
                    block_size=4096),  # the entry promises more blocks than the core has
        ]
        for i, entry in enumerate(entries):
            entry["manifest"]["name"] = f"lure-{i}"
            body = {k: entry[k] for k in ("v", "manifest", "transfer", "author")}
            entry["signature"] = mallory.identity.sign(canonical(body))
        mallory._call("set_catalog", items=[{"rooms": ["public"], "entry": e} for e in entries])
        assert bob.wait_for(lambda: sees_adapter(bob, "lure-0") and sees_adapter(bob, "lure-1"), 60)
        before = corestore_bytes(bob_home)
        files_before = files_in(bob_home)
        for name in ("lure-0", "lure-1"):
            record = bob.wait_download(bob.download(offer_id(bob, name)), 60)
            assert record.state == "failed" and record.code == "mismatch", record
            assert "signed entry says" in record.error
        assert corestore_bytes(bob_home) - before < (1 << 20), "no fat block was fetched"
        assert bob.list_downloads() and all(d["state"] == "failed" for d in bob.list_downloads())
    with running_peer(bob_home, testnet.bootstrap) as bob_again:  # a failed download is not replayed
        assert all(d["state"] == "failed" for d in bob_again.list_downloads())
    assert not any(bob_home.staging_dir.iterdir()) and AdapterStore(bob_home).list() == []
    assert written_outside_staging(bob_home, files_before, downloaded="nothing") == set()


def test_a_download_names_the_entry_not_the_name_and_a_reshare_keeps_the_author(testnet, make_layout, shared_base):
    alice_home, mallory_home, bob_home, carol_home = make_layout(), make_layout(), make_layout(), make_layout()
    synthetic_adapter(alice_home, "voice", shared_base, rank=2)
    synthetic_adapter(mallory_home, "voice", shared_base, rank=2, seed=7)  # a same-name substitute
    with running_peer(alice_home, testnet.bootstrap) as alice, running_peer(mallory_home, testnet.bootstrap) as mallory, \
            running_peer(bob_home, testnet.bootstrap) as bob, running_peer(carol_home, testnet.bootstrap) as carol:
        for peer in (alice, mallory, bob, carol):
            peer.join_public()
        alice.share("voice")
        mallory.share("voice")
        assert bob.wait_for(lambda: sees_adapter(bob, "voice", alice.public_key) and sees_adapter(bob, "voice", mallory.public_key), 60)
        chosen = offer_id(bob, "voice", alice.public_key)
        assert bob.wait_download(bob.download(chosen), 120).state == "done"
        received = AdapterStore(bob_home).get("voice")
        assert received.files == AdapterStore(alice_home).get("voice").files, "the row the user chose, not the substitute"
        bob.share("voice")  # an honest re-share
        assert carol.wait_for(lambda: sees_adapter(carol, "voice", bob.public_key), 60)
        row = next(r for r in carol.browse() if r["peer"] == bob.public_key)
        assert row["author"] == alice.public_key and row["shared_by"] == bob.public_key and not row["first_hand"]
        assert not row["disputed"]
    with pytest.raises(VerificationError):
        verify_entry({**row, "v": 2})  # a browse row is not an entry


def test_a_leaked_core_key_of_a_private_adapter_yields_nothing_readable(testnet, make_layout, shared_base):
    alice_home, bob_home, eve_home = make_layout(), make_layout(), make_layout()
    synthetic_adapter(alice_home, "family", shared_base, rank=2)
    with running_peer(alice_home, testnet.bootstrap) as alice, running_peer(bob_home, testnet.bootstrap) as bob, \
            running_peer(eve_home, testnet.bootstrap, stall_seconds=20) as eve:
        for peer in (alice, bob, eve):
            peer.join_public()
        room, code = alice.create_room("family")
        bob.join_room(code)
        shared = alice.share("family", rooms=[room.id])
        assert shared["private"] is True
        assert bob.wait_for(lambda: sees_adapter(bob, "family"), 60)
        assert next(r for r in bob.browse() if r["name"] == "family")["private"]
        assert bob.wait_download(bob.download(offer_id(bob, "family")), 120).state == "done", "members decrypt"
        assert AdapterStore(bob_home).get("family").files == AdapterStore(alice_home).get("family").files
        assert not sees_adapter(eve, "family")
        # Eve learns the signed entry and the core key (say a member leaked them), but not the room's access key.
        leaked = verify_entry({k: v for k, v in alice.shares.records()["family"].entry.items() if k != "access"})
        record = eve.wait_download(eve.downloads.start(alice.public_key, leaked, None), 120)
        # Without the key the core does not even add up to the signed size: refused before a block moves.
        assert record.state == "failed" and record.code in ("mismatch", "rejected"), record
        plain = (AdapterStore(alice_home).path("family") / "adapter_model.safetensors").read_bytes()[:4096]
        for home in (eve_home, alice_home, bob_home):  # blocks are encrypted at rest and on the wire, at every holder
            stored = b"".join(p.read_bytes() for p in home.corestore_dir.rglob("*") if p.is_file())
            assert plain[64:512] not in stored, f"plaintext blocks in {home.root}"
    assert AdapterStore(eve_home).list() == []


def test_a_holder_that_stops_sending_stalls_the_download_which_fails_and_clears(testnet, make_layout, shared_base):
    import os
    import signal

    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "big", shared_base, rank=64)  # ~78 MB, 299 blocks
    with running_peer(alice_home, testnet.bootstrap) as alice, \
            running_peer(bob_home, testnet.bootstrap, stall_seconds=3) as bob:
        alice.join_public()
        bob.join_public()
        alice.share("big")
        assert bob.wait_for(lambda: sees_adapter(bob, "big"), 60)
        download_id = bob.download(offer_id(bob, "big"))
        assert bob.wait_for(lambda: getattr(bob.downloads.get(download_id), "blocks", 0) >= 1, 60)
        os.kill(alice.sidecar_pid, signal.SIGSTOP)  # the connection stays open; nothing more arrives
        try:
            record = bob.wait_download(download_id, 60)
        finally:
            os.kill(alice.sidecar_pid, signal.SIGCONT)
        assert record.state == "failed" and record.code == "stalled", record
        assert 0 < record.blocks < record.total
        assert not any(bob_home.staging_dir.iterdir()) and AdapterStore(bob_home).list() == []


def test_a_peer_that_goes_silent_is_dropped_after_the_idle_timeout(testnet, make_layout, shared_base, tmp_path):
    """A peer that proves membership and then sends nothing at all (not even keep-alives, which
    come every 5 s; its transport stays up) is dropped after the idle timeout; an honest peer stays."""
    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "kind", shared_base, rank=2)
    with running_peer(alice_home, testnet.bootstrap) as alice, \
            running_peer(bob_home, testnet.bootstrap, peer_limits={"idleMs": 12000}) as bob:
        events: list[dict] = []
        bob.subscribe(lambda e: events.append(e) if e.get("event") in ("peer-join", "peer-leave") else None)
        alice.join_public()
        alice.share("kind")
        bob.join_public()
        assert bob.wait_for(lambda: sees_adapter(bob, "kind", alice.public_key), 60)
        hostile = Hostile("silent", testnet, tmp_path / "hostile", seconds=60)
        try:
            assert bob.wait_for(lambda: {"event": "peer-join", "peer": hostile.key} in events, 60), "the silent peer connected"
            assert bob.wait_for(lambda: {"event": "peer-leave", "peer": hostile.key} in events, 90), "dropped when idle"
        finally:
            hostile.close()
        assert {"event": "peer-leave", "peer": alice.public_key} not in events, "the honest peer, sending keep-alives, stays"
        still_serves(bob, alice)


def test_at_the_connection_cap_strangers_make_way_and_members_stay_served(testnet, make_layout, shared_base, tmp_path):
    import threading

    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "kind", shared_base, rank=2)
    cap = 4
    with running_peer(alice_home, testnet.bootstrap) as alice, \
            running_peer(bob_home, testnet.bootstrap, peer_limits={"connections": cap}) as bob:
        alice.join_public()
        alice.share("kind")
        bob.join_public()
        assert bob.wait_for(lambda: sees_adapter(bob, "kind", alice.public_key), 60)
        counts, stop = [], threading.Event()

        def sample():
            while not stop.is_set():
                counts.append(len(bob.peers()))
                stop.wait(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        hostile = Hostile("many", testnet, tmp_path / "hostile", seconds=12)  # 12 identities knocking
        try:
            stop.wait(15)
            still_serves(bob, alice)
            assert alice.public_key in {p["peer"] for p in bob.peers()}, "the member kept its place"
            assert bob._sidecar.restart_count == 0
        finally:
            stop.set()
            sampler.join()
            hostile.close()
    assert max(counts) == cap, f"the cap of {cap} connections was reached and held: {sorted(set(counts))}"


def test_free_open_room_identities_cannot_lock_a_member_out(testnet, make_layout, shared_base, tmp_path):
    """Issue 30.1: identities that prove the public room (its proof is free) fill the cap; a member of a
    private room that comes (back) while the cap is full gets a place within seconds and is served."""
    import time

    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "kind", shared_base, rank=2)
    cap, open_places = 8, 4
    with running_peer(bob_home, testnet.bootstrap, peer_limits={"connections": cap, "openPeers": open_places}) as bob:
        bob.join_public()
        room, code = bob.create_room("friends")
        hostile = Hostile("many-open", testnet, tmp_path / "hostile", seconds=16)  # 16 free identities
        try:
            assert bob.wait_for(lambda: len(bob.peers()) >= open_places, 60), "the throwaway identities got in"
            time.sleep(3)  # they keep knocking: every place they can take is taken
            assert len(bob.peers()) <= cap
            with running_peer(alice_home, testnet.bootstrap) as alice:
                arrived = time.monotonic()
                alice.join_public()
                alice.join_room(code)
                alice.share("kind", rooms=[room.id])
                assert bob.wait_for(lambda: alice.public_key in {p["peer"] for p in bob.peers()}, 30), "the member got a place"
                waited = time.monotonic() - arrived
                still_serves(bob, alice)
                assert alice.public_key in {p["peer"] for p in bob.peers()}, "and kept it"
        finally:
            hostile.close()
    assert waited < 20, f"the member waited {waited:.0f} s for a place"


def test_a_transfer_rejected_after_it_arrived_leaves_no_blocks_and_stops_being_served(testnet, make_layout, shared_base):
    """Issue 30.3: an entry whose signed file hashes are not its core's bytes arrives whole, is rejected
    by the verification in Python, and its blocks leave the corestore; trying again adds nothing."""
    mallory_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(mallory_home, "bait", shared_base, rank=32)
    with running_peer(mallory_home, testnet.bootstrap) as mallory, running_peer(bob_home, testnet.bootstrap) as bob:
        mallory.join_public()
        bob.join_public()
        mallory.share("bait")
        lying = json.loads(json.dumps(mallory.shares.records()["bait"].entry))
        files = lying["manifest"]["files"]
        name = next(iter(files))
        files[name]["sha256"] = "0" * 64  # not the bytes its core holds
        lying["manifest"]["name"] = "lure"
        body = {k: lying[k] for k in ("v", "manifest", "transfer", "author")}
        lying["signature"] = mallory.identity.sign(canonical(body))
        mallory._call("set_catalog", items=[{"rooms": ["public"], "entry": lying}])
        assert bob.wait_for(lambda: sees_adapter(bob, "lure"), 60)
        core = lying["transfer"]["core"]
        for _ in range(2):
            record = bob.wait_download(bob.download(offer_id(bob, "lure")), 120)
            assert record.state == "failed" and record.code == "rejected", record
            assert record.blocks > 0, "it did arrive before it was rejected"
            kept = bob._call("stored", key=core)
            assert kept["blocks"] == 0 and not kept["open"], f"no block of it is kept, and it is not served onwards: {kept}"
        assert not any(bob_home.staging_dir.iterdir()) and AdapterStore(bob_home).list() == []
        assert mallory._call("stored", key=core)["blocks"] > 0, "the holder's own share is untouched"


def test_a_private_adapter_is_asked_only_of_its_rooms_members(testnet, make_layout, shared_base, tmp_path):
    """Issue 30.7: when the holder of a private adapter stops answering, its want (core key, access
    proof) goes to no peer outside the rooms it was offered in."""
    import os
    import signal
    import threading

    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "family", shared_base, rank=16)
    with running_peer(alice_home, testnet.bootstrap) as alice, \
            running_peer(bob_home, testnet.bootstrap, stall_seconds=3) as bob:
        alice.join_public()
        bob.join_public()
        room, code = alice.create_room("family")
        bob.join_room(code)
        alice.share("family", rooms=[room.id])
        eve = Hostile("listen-wants", testnet, tmp_path / "eve", seconds=60)  # in the public room with Bob, not in "family"
        heard = []
        listener = threading.Thread(target=lambda: heard.extend(json.loads(line) for line in eve.process.stdout), daemon=True)
        try:
            listener.start()
            assert bob.wait_for(lambda: sees_adapter(bob, "family") and eve.key in {p["peer"] for p in bob.peers()}, 60)
            os.kill(alice.sidecar_pid, signal.SIGSTOP)  # the holder stops answering: Bob looks for another
            try:
                record = bob.wait_download(bob.download(offer_id(bob, "family")), 60)
            finally:
                os.kill(alice.sidecar_pid, signal.SIGCONT)
            assert record.state == "failed", record
        finally:
            eve.close()
    core = alice.shares.records()["family"].entry["transfer"]["core"]
    assert not [line for line in heard if line.get("wanted") == core], "the private core's want reached a stranger"


def test_a_trickling_holder_is_abandoned_for_an_honest_one(testnet, make_layout, shared_base, tmp_path):
    """Issue 30.2: a holder that sends one right-sized block every 5 s (under the 20 s stall limit) is
    left for the honest holder within the grace period, and the user is told which holder was slow."""
    import time

    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "kind", shared_base, rank=16)  # ~10 blocks of 1 MiB
    stall = 20
    with running_peer(alice_home, testnet.bootstrap) as alice, \
            running_peer(bob_home, testnet.bootstrap, stall_seconds=stall) as bob:
        alice.join_public()
        bob.join_public()
        alice.share("kind")
        entry_file = tmp_path / "entry.json"
        entry_file.write_text(json.dumps(alice.shares.records()["kind"].entry))
        trickler = Hostile("trickle", testnet, tmp_path / "trickler", seconds=120, entry_file=entry_file)
        events = []
        bob.subscribe(events.append)
        try:
            assert bob.wait_for(lambda: sees_adapter(bob, "kind", trickler.key) and sees_adapter(bob, "kind", alice.public_key), 60)
            started = time.monotonic()
            download_id = bob.download(offer_id(bob, "kind", trickler.key))  # the trickler's offer: asked first
            record = bob.wait_download(download_id, 4 * stall)
            took = time.monotonic() - started
        finally:
            trickler.close()
        assert record.state == "done", record
        assert AdapterStore(bob_home).get("kind").files == AdapterStore(alice_home).get("kind").files
        slow = [e for e in events if e.get("event") == "download-slow"]
        assert slow and slow[0]["peer"] == trickler.key, (events[-5:], took)
        assert record.slow_holder.peer == trickler.key and record.slow_holder.bytes_per_s < 256 * 1024
    assert took <= 2 * stall, f"the download took {took:.0f} s with a trickling holder first"


def test_a_sole_trickling_holder_is_given_up_within_its_deadline(testnet, make_layout, shared_base, tmp_path):
    """Issue 30.2, the holder alone: with nobody else to ask, a holder trickling under the stall limit
    is still given up once its deadline (the adapter at a quarter of the minimum rate) is past."""
    import time

    alice_home, bob_home = make_layout(), make_layout()
    synthetic_adapter(alice_home, "kind", shared_base, rank=32)  # 38 blocks: 190 s at one block per 5 s
    with running_peer(alice_home, testnet.bootstrap) as alice:
        alice.join_public()
        alice.share("kind")
        entry = alice.shares.records()["kind"].entry  # the honest holder then leaves
    entry_file = tmp_path / "entry.json"
    entry_file.write_text(json.dumps(entry))
    with running_peer(bob_home, testnet.bootstrap, stall_seconds=6) as bob:
        bob.downloads.min_bytes_per_s = 64 << 20  # so the deadline is seconds, not minutes
        bob.join_public()
        trickler = Hostile("trickle", testnet, tmp_path / "trickler", seconds=300, entry_file=entry_file)
        events = []
        bob.subscribe(events.append)
        try:
            assert bob.wait_for(lambda: sees_adapter(bob, "kind", trickler.key), 60)
            started = time.monotonic()
            record = bob.wait_download(bob.download(offer_id(bob, "kind", trickler.key)), 120)
            took = time.monotonic() - started
        finally:
            trickler.close()
    assert record.state == "failed" and record.blocks < record.total, record
    assert any(e.get("event") == "download-slow" and e["peer"] == trickler.key for e in events)
    assert took < 60, f"a trickling sole holder held the download for {took:.0f} s"
    assert not any(bob_home.staging_dir.iterdir()) and AdapterStore(bob_home).list() == []
