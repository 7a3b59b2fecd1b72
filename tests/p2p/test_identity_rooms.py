"""Identity keys, invite codes and signed catalog entries (no network needed)."""

import os
import stat
import threading

import pytest

from backend.errors import NotFoundError, ValidationError
from backend.p2p.catalog import canonical, public_manifest, sign_entry, verify_entry
from backend.p2p.catalog_intake import CatalogIntake
from backend.p2p.identity import Identity, IdentityError, load_identity, verify_signature
from backend.p2p.peers import PeerDirectory
from backend.p2p.rooms import RoomBook, RoomError, new_invite_code, room_from_invite
from backend.p2p.verify import VerificationError
from backend.training.adapters import AdapterManifest


def test_identity_is_created_once_with_private_permissions(layout):
    first = load_identity(layout)
    seed_file = layout.identity_dir / "ed25519.seed"
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    assert load_identity(layout).public_key == first.public_key
    signature = first.sign(b"hello")
    assert verify_signature(first.public_key, signature, b"hello")
    assert not verify_signature(first.public_key, signature, b"hellO")
    os.chmod(seed_file, 0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        load_identity(layout)


def test_invite_codes_carry_128_bits_and_map_to_one_room(layout):
    codes = {new_invite_code() for _ in range(50)}
    assert len(codes) == 50
    code = codes.pop()
    assert code.startswith("om2-") and len(code.replace("-", "")) == 3 + 32, "128 random bits + a 32-bit checksum"
    room = room_from_invite(code, "friends")
    assert room_from_invite(code.lower().replace("-", " ")).id == room.id, "codes survive retyping"
    assert room.secret not in code and room.id not in code
    with pytest.raises(RoomError):
        room_from_invite("om1-AAAA")
    book = RoomBook(layout)
    book.add(room)
    assert [r.id for r in book.list()] == [room.id]
    assert stat.S_IMODE(book.path.stat().st_mode) == 0o600


def test_a_mistyped_or_made_up_invite_code_is_refused():
    code = new_invite_code()
    position = len(code) - 6
    typo = code[:position] + ("A" if code[position] != "A" else "B") + code[position + 1:]
    with pytest.raises(RoomError, match="typo") as caught:
        room_from_invite(typo)
    assert caught.value.code == "bad_invite"
    with pytest.raises(RoomError, match="typo"):
        room_from_invite("om2-" + "-".join(["ABCD"] * 8))  # made up: right shape, wrong check letters
    with pytest.raises(RoomError, match="older Orch-Mind"):
        room_from_invite("om1-ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ")


def manifest(**changes):
    fields = {"name": "voice", "base": {"reference": "/home/ana/models/secret-project.gguf", "sha256": "a" * 64, "gguf": "x.gguf"},
              "rank": 4, "alpha": 8, "target_modules": ["q_proj"],
              "files": {"adapter_model.safetensors": {"sha256": "b" * 64, "size": 10}},
              "dataset": {"train_samples": 10, "titles": ["Ana's diary"]}, "provenance": {"run_dir": "/home/ana/x"}}
    return AdapterManifest(**{**fields, **changes})


SEEDED = {"key": "c" * 64, "byteLength": 10, "treeHash": "d" * 64}


def test_signed_entries_leak_no_local_paths_and_detect_tampering(layout):
    identity = load_identity(layout)
    entry = sign_entry(identity, manifest(), SEEDED)
    wire = entry.to_wire()
    text = str(wire)
    assert "/home/ana" not in text and "diary" not in text
    assert wire["manifest"]["base"]["reference"] == "secret-project.gguf"
    assert public_manifest(manifest())["dataset"] == {"train_samples": 10}
    assert verify_entry(wire).author == identity.public_key
    tampered = {**wire, "manifest": {**wire["manifest"], "rank": 8}}
    with pytest.raises(VerificationError, match="signature"):
        verify_entry(tampered)
    with pytest.raises(VerificationError):
        verify_entry({**wire, "extra": 1})


def test_public_manifests_are_built_from_an_allow_list_at_every_depth(layout):
    source = {"name": "dads-voice", "adapter_sha256": "e" * 64, "provenance": {
        "kind": "trained", "voice": "talks like Dad", "system_prompt": "You are Ana's private diary", "downloaded_from": "f" * 64}}
    merged = manifest(provenance={"kind": "merged", "method": "ties", "weights": [0.5, 0.5], "density": 0.5,
                                  "sources": [source, {**source, "name": "mums-voice"}], "system_prompt": "Ana's diary",
                                  "voice": "warm"},
                      metrics={"eval_loss": 1.5, "inputs_eval_loss": {"dads-voice": 1.2}})
    public = public_manifest(merged)
    text = canonical(public).decode()
    for secret in ("Dad", "diary", "dads-voice", "mums-voice", "f" * 64, "warm", "/home/ana"):
        assert secret not in text, secret
    assert public["provenance"] == {"kind": "merged", "method": "ties", "weights": [0.5, 0.5], "density": 0.5,
                                    "sources": [{"adapter_sha256": "e" * 64}] * 2}
    assert public["metrics"] == {"eval_loss": 1.5}


def test_a_reshare_keeps_the_author_and_cannot_claim_other_files(layout, tmp_path):
    alice, bob = load_identity(layout), Identity(bytes(range(32)))
    original = sign_entry(alice, manifest(), SEEDED)
    reshared = verify_entry(sign_entry(bob, manifest(), {**SEEDED, "key": "9" * 64}, origin=original).to_wire())
    assert reshared.author == bob.public_key and reshared.original_author == alice.public_key
    assert reshared.entry_id != original.entry_id and len(reshared.entry_id) == 32
    other = manifest(files={"adapter_model.safetensors": {"sha256": "0" * 64, "size": 10}})
    with pytest.raises(VerificationError, match="files"):
        sign_entry(bob, other, SEEDED, origin=original)
    forged = sign_entry(bob, manifest(), SEEDED, origin=original).to_wire()
    forged["origin"] = {**forged["origin"], "author": bob.public_key}  # claims Alice's entry as Bob's own
    with pytest.raises(VerificationError):
        verify_entry(forged)


def test_a_badly_named_entry_is_rejected_alone_and_downloads_need_an_unambiguous_id(layout):
    identity = load_identity(layout)
    good = sign_entry(identity, manifest(), SEEDED).to_wire()
    bad_body = {k: v for k, v in good.items() if k != "signature"}
    bad_body = {**bad_body, "manifest": {**bad_body["manifest"], "name": "../../etc"}}
    bad = {**bad_body, "signature": identity.sign(canonical(bad_body))}
    with pytest.raises(VerificationError, match="manifest"):
        verify_entry(bad)
    directory = PeerDirectory(threading.RLock())
    directory.joined("a" * 64)
    summaries = []
    intake = CatalogIntake(lambda *args: summaries.append(directory.apply_catalog(*args)))
    intake.submit("a" * 64, ["public"], [bad, good, "junk"], rejected=3)
    assert intake.idle(10)
    intake.stop()
    assert summaries == [{"event": "catalog", "peer": "a" * 64, "rooms": ["public"], "adapters": 1, "rejected": 5}]
    entry_id = directory.browse({})[0]["id"]
    assert directory.find(entry_id[:16])[1].entry_id == entry_id
    with pytest.raises(ValidationError, match="16 hex"):
        directory.find(entry_id[:8])
    with pytest.raises(NotFoundError):
        directory.find("0" * 32)


def test_a_damaged_rooms_file_is_refused_with_what_to_do_like_every_network_state_file(layout):
    from backend.p2p.state import P2PStateError

    book = RoomBook(layout)
    book.add(room_from_invite(new_invite_code(), "friends"))
    before = book.path.read_text()
    for damage in ('[{"id": "x"}]', "not json", '{"id": "x"}'):
        book.path.write_text(damage)
        with pytest.raises(P2PStateError, match="rooms.json is damaged.*join your rooms again"):
            book.list()
    book.path.write_text(before)
    assert [r.name for r in book.list()] == ["friends"], "an intact file still reads"


def test_catalogs_are_verified_off_the_reader_within_one_budget_for_all_peers(layout, caplog):
    """Issue 30.4: twelve identities sending catalogs of badly signed entries: handing them over returns
    at once, all peers together get at most the budget of signature checks, a peer's newer catalog
    replaces its waiting one, each rejected catalog is one log line, and an honest catalog still lands."""
    import time

    identity = load_identity(layout)
    good = sign_entry(identity, manifest(), SEEDED).to_wire()
    forged = [{**good, "signature": format(i, "0128x")} for i in range(200)]  # shape-valid, bad signatures
    landed = []
    intake = CatalogIntake(lambda peer, rooms, entries, rejected: landed.append((peer, len(entries), rejected)),
                           per_second=400, burst=100)
    started = time.monotonic()
    try:
        for _round in range(3):
            for attacker in range(12):
                intake.submit(f"{attacker:064x}", ["public"], forged, rejected=0)
        handed_over = time.monotonic() - started
        intake.submit("f" * 64, ["public"], [good], rejected=0)
        assert intake.idle(60)
        elapsed = time.monotonic() - started
    finally:
        intake.stop()
    assert handed_over < 0.5, f"handing 36 catalogs over took {handed_over:.2f} s"
    assert ("f" * 64, 1, 0) in landed, "the honest catalog landed"
    attackers = [row for row in landed if row[0] != "f" * 64]
    assert len(attackers) <= 12 * 2, "a newer catalog replaced the one still waiting"
    assert intake.checked <= 100 + 400 * elapsed + 1, f"{intake.checked} checks in {elapsed:.1f} s"
    rejected_lines = [r for r in caplog.records if "catalog entries from" in r.getMessage()]
    assert len(rejected_lines) == len(attackers), "one line per rejected catalog, not one per entry"
