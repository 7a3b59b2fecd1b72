"""P2P benchmark: adapter transfer between two local peers vs. raw Hyperswarm and plain TCP.

    python bench/p2p.py [--quick] --json

All on one loopback DHT testnet (every node on 127.0.0.1), in one run:
- transfer_vs_raw_hyperswarm: our download as the app does it (the direct transfer from the holder's
  files, each file's SHA-256 checked against the signed manifest, written to staging, then
  header/shape/NaN-verified and moved into the store; Hypercore only as the fallback) MB/s / one raw
  Hyperswarm stream's MB/s.
- transfer_vs_tcp: the same / a plain TCP socket copy on 127.0.0.1 (sendfile to a file).
- join_to_catalog_s: from starting a peer and joining the room to seeing the other peer's catalog.
- private_transfer_vs_raw_hyperswarm: the same download from a private room (blocks encrypted).
- rss_under_proof_flood_mb: the app peer's sidecar RSS after 10 s of a hostile peer flooding proof
  messages (tests/p2p/hostile_peer.js), minus its idle RSS just before (goal <= 100).
- member_reconnect_s_under_cap_attack: 30 free identities that prove the public room knock at a peer
  capped at 16 connections (8 for open-room peers); from a member of its private room joining to
  that peer counting it (goal <= 5).
- trickle_fallback_s: a download first offered by a holder that sends one right-sized block every 5 s
  (under the stall limit), until it is done from the honest holder (goal <= 2 x the stall limit, the
  product's default, reported as stall_limit_s).
- reader_stall_ms_under_bad_signatures: p99 round trip of a trivial sidecar command, every 50 ms for
  10 s, while 12 identities send catalogs of badly signed entries within their limits (goal <= 100).
The adapter is synthetic (random LoRA weights of SmolLM2's shapes): about 100 MB, 20 MB with --quick.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from backend.config import DataLayout  # noqa: E402
from backend.p2p.node_runtime import node_executable  # noqa: E402
from backend.p2p.service import P2PService  # noqa: E402
from backend.p2p.synthetic import synthetic_adapter  # noqa: E402
from backend.p2p.testnet import LoopbackTestnet  # noqa: E402
from backend.training.base_models import resolve_base  # noqa: E402


def peer_home(root: Path, base) -> DataLayout:
    layout = DataLayout(Path(tempfile.mkdtemp(dir=root)))
    link = layout.hf_base_dir(base.sha256)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(base.hf_dir, target_is_directory=True)
    return layout


def tcp_copy(source: Path, target: Path) -> float:
    """Seconds to copy ``source`` over a loopback TCP socket into ``target``."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    size = source.stat().st_size

    def receive() -> None:
        conn, _ = server.accept()
        with conn, target.open("wb") as out:
            left = size
            while left:
                data = conn.recv(1 << 20)
                if not data:
                    break
                out.write(data)
                left -= len(data)

    receiver = threading.Thread(target=receive)
    receiver.start()
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as conn, source.open("rb") as handle:
        conn.sendfile(handle)
    receiver.join()
    server.close()
    return time.perf_counter() - started


def sidecar_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def proof_flood_rss(service: P2PService, port: str, storage: Path, seconds: int = 10) -> dict:
    """Sidecar RSS growth after ``seconds`` of a hostile peer flooding proofs at ``service``."""
    from backend.p2p.rooms import PUBLIC_ROOM_SECRET

    pid = service.sidecar_pid
    dropped: list[dict] = []
    service.subscribe(lambda e: dropped.append(e) if e.get("event") == "peer-misbehaved" else None)
    idle = sidecar_rss_mb(pid)
    hostile = subprocess.Popen([str(node_executable()), "tests/p2p/hostile_peer.js", "proof-flood", port, PUBLIC_ROOM_SECRET,
                                str(storage), str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parent.parent)
    hostile.stdout.readline()  # ready
    time.sleep(seconds)  # the quantity measured is "after 10 s of flood"
    after = sidecar_rss_mb(pid)
    hostile.stdin.close()
    hostile.wait(timeout=30)
    return {"idle_mb": round(idle, 1), "after_mb": round(after, 1), "growth_mb": round(after - idle, 1),
            "dropped": [e.get("reason") for e in dropped]}


def hostile(mode: str, port: str, storage: Path, seconds: int, entry_file: Path | None = None) -> subprocess.Popen:
    from backend.p2p.rooms import PUBLIC_ROOM_SECRET

    process = subprocess.Popen([str(node_executable()), "tests/p2p/hostile_peer.js", mode, port, PUBLIC_ROOM_SECRET, str(storage),
                                str(seconds), *([str(entry_file)] if entry_file else [])], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
    process.stdout.readline()  # ready
    return process


def close(process: subprocess.Popen) -> None:
    process.stdin.close()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def member_reconnect_under_cap_attack(net, root: Path, base) -> float:
    bob = P2PService(peer_home(root, base), bootstrap=net.bootstrap, host="127.0.0.1", peer_limits={"connections": 16, "openPeers": 8})
    carol = P2PService(peer_home(root, base), bootstrap=net.bootstrap, host="127.0.0.1")
    bob.start()
    attack = None
    try:
        bob.join_public()
        _, code = bob.create_room("bench")
        attack = hostile("many-open", net.bootstrap[0].split(":")[1], root / "knockers", 30)
        bob.wait_for(lambda: len(bob.peers()) >= 8, 60)
        time.sleep(3)
        carol.start()
        started = time.perf_counter()
        carol.join_public()
        carol.join_room(code)
        assert bob.wait_for(lambda: carol.public_key in {p["peer"] for p in bob.peers()}, 120), "the member never got in"
        return time.perf_counter() - started
    finally:
        if attack:
            close(attack)
        carol.stop()
        bob.stop()


def entry_file_of(root: Path, alice: P2PService) -> Path:
    """Alice's signed entry of "bench", for a hostile peer to offer (as a re-share) or to forge copies of."""
    path = root / "entry.json"
    path.write_text(json.dumps(alice.shares.records()["bench"].entry))
    return path


def started_peer(net, root: Path, base) -> P2PService:
    peer = P2PService(peer_home(root, base), bootstrap=net.bootstrap, host="127.0.0.1")
    peer.start()
    return peer


def trickle_fallback(net, root: Path, base, alice: P2PService) -> tuple[float, float]:
    entry_file = entry_file_of(root, alice)
    bob = started_peer(net, root, base)
    trickler = None
    try:
        bob.join_public()  # announced first: the trickler, joining after, finds Bob at once
        trickler = hostile("trickle", net.bootstrap[0].split(":")[1], root / "trickler", 600, entry_file)
        offers = lambda: {r["peer"]: r["id"] for r in bob.browse() if r["name"] == "bench"}  # noqa: E731
        assert bob.wait_for(lambda: len(offers()) >= 2, 60), "the trickler's offer never arrived"
        trickler_offer = next(entry for peer, entry in offers().items() if peer != alice.public_key)
        started = time.perf_counter()
        record = bob.wait_download(bob.download(trickler_offer), 600)
        assert record.state == "done", record
        return time.perf_counter() - started, bob.downloads.stall_seconds
    finally:
        if trickler:
            close(trickler)
        bob.stop()


def reader_stall_under_bad_signatures(net, root: Path, base, alice: P2PService, seconds: float = 10) -> dict:
    entry_file = entry_file_of(root, alice)
    bob = started_peer(net, root, base)
    attack = None
    try:
        bob.join_public()
        attack = hostile("bad-signatures", net.bootstrap[0].split(":")[1], root / "forgers", 12, entry_file)
        bob.wait_for(lambda: len(bob.peers()) >= 6, 60)
        trips, until = [], time.monotonic() + seconds
        while time.monotonic() < until:
            started = time.perf_counter()
            bob._call("release", key="00" * 32)
            trips.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)
        rejected = sum(p["rejected"] for p in bob.peers())
    finally:
        if attack:
            close(attack)
        bob.stop()
    trips.sort()
    return {"p50_ms": round(trips[len(trips) // 2], 1), "p99_ms": round(trips[min(len(trips) - 1, int(0.99 * len(trips)))], 1),
            "max_ms": round(trips[-1], 1), "entries_rejected": rejected}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rank = 16 if args.quick else 82  # ~20 MB / ~100 MB of fp32 LoRA weights on SmolLM2-135M
    with tempfile.TemporaryDirectory(prefix="orch-bench-p2p-") as tmp:  # ~1.4 GB of peers' data: never left behind
        result = run(Path(tmp), rank)
    print(json.dumps(result, indent=None if args.json else 2))


def run(root: Path, rank: int) -> dict:
    base = resolve_base("smollm2", DataLayout(root / "base"))
    with LoopbackTestnet(3) as net:
        alice_home, bob_home = peer_home(root, base), peer_home(root, base)
        manifest = synthetic_adapter(alice_home, "bench", base, rank=rank)
        size = sum(f["size"] for f in manifest.files.values())
        alice = P2PService(alice_home, bootstrap=net.bootstrap, host="127.0.0.1")
        alice.start()
        alice.join_public()
        alice.share("bench")
        bob = P2PService(bob_home, bootstrap=net.bootstrap, host="127.0.0.1")
        started = time.perf_counter()
        bob.start()
        bob.join_public()
        bob.wait_for(lambda: any(r["name"] == "bench" for r in bob.browse()), 60)
        join_to_catalog = time.perf_counter() - started
        started = time.perf_counter()
        requested_at = time.time()
        entry_id = next(r["id"] for r in bob.browse() if r["name"] == "bench")
        record = bob.wait_download(bob.download(entry_id), 600)
        ours = time.perf_counter() - started
        transfer_s = record.transferred_at - requested_at
        assert record.state == "done", record
        room, code = alice.create_room("bench")
        bob.join_room(code)
        synthetic_adapter(alice_home, "bench-private", base, rank=rank, seed=3)
        alice.share("bench-private", rooms=[room.id])
        bob.wait_for(lambda: any(r["name"] == "bench-private" for r in bob.browse()), 60)
        started = time.perf_counter()
        private = bob.wait_download(bob.download(next(r["id"] for r in bob.browse() if r["name"] == "bench-private")), 600)
        ours_private = time.perf_counter() - started
        assert private.state == "done", private
        flood = proof_flood_rss(bob, net.bootstrap[0].split(":")[1], root / "hostile")
        bob.stop()
        trickle_s, stall_s = trickle_fallback(net, root, base, alice)
        reader = reader_stall_under_bad_signatures(net, root, base, alice)
        alice.stop()
        reconnect_s = member_reconnect_under_cap_attack(net, root, base)
        raw = json.loads(subprocess.run([str(node_executable()), str(Path(__file__).parent / "raw_hyperswarm.js"),
                                         net.bootstrap[0].split(":")[1], str(size)],
                                        capture_output=True, text=True, check=True).stdout)
    tcp = tcp_copy(alice_home.adapters_dir / "bench" / "adapter_model.safetensors", root / "tcp-copy")
    mb = size / 1e6
    return {
        "adapter_mb": round(mb, 1),
        "ours_mb_s": round(mb / ours, 1),
        "raw_hyperswarm_mb_s": round(mb / raw["seconds"], 1),
        "tcp_mb_s": round(mb / tcp, 1),
        "transfer_vs_raw_hyperswarm": round(raw["seconds"] / ours, 3),
        "transfer_vs_tcp": round(tcp / ours, 3),
        "private_transfer_vs_raw_hyperswarm": round(raw["seconds"] / ours_private, 3),
        "rss_under_proof_flood_mb": flood["growth_mb"],
        "proof_flood": flood,
        "join_to_catalog_s": round(join_to_catalog, 3),
        "member_reconnect_s_under_cap_attack": round(reconnect_s, 2),
        "trickle_fallback_s": round(trickle_s, 2),
        "stall_limit_s": stall_s,
        "reader_stall_ms_under_bad_signatures": reader["p99_ms"],
        "bad_signatures": reader,
        "ours_split_s": {"transfer_and_write": round(transfer_s, 2), "verify_and_import": round(ours - transfer_s, 2)},
        "note": "ours: direct transfer with every file's signed SHA-256 checked, staging writes and the full adapter verification",
    }


if __name__ == "__main__":
    main()
