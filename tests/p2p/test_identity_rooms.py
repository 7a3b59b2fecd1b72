"""Identity keys, invite codes and signed catalog entries (no network needed)."""

import os
import stat

import pytest

from backend.errors import ValidationError
from backend.p2p.catalog import public_manifest, sign_entry, verify_entry
from backend.p2p.identity import IdentityError, load_identity, verify_signature
from backend.p2p.rooms import RoomBook, new_invite_code, room_from_invite
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
    room = room_from_invite(code, "friends")
    assert room_from_invite(code.lower().replace("-", " ")).id == room.id, "codes survive retyping"
    assert room.secret not in code and room.id not in code
    with pytest.raises(ValidationError):
        room_from_invite("om1-AAAA")
    book = RoomBook(layout)
    book.add(room)
    assert [r.id for r in book.list()] == [room.id]
    assert stat.S_IMODE(book.path.stat().st_mode) == 0o600


def manifest(**changes):
    fields = {"name": "voice", "base": {"reference": "/home/ana/models/secret-project.gguf", "sha256": "a" * 64, "gguf": "x.gguf"},
              "rank": 4, "alpha": 8, "target_modules": ["q_proj"],
              "files": {"adapter_model.safetensors": {"sha256": "b" * 64, "size": 10}},
              "dataset": {"train_samples": 10, "titles": ["Ana's diary"]}, "provenance": {"run_dir": "/home/ana/x"}}
    return AdapterManifest(**{**fields, **changes})


def test_signed_entries_leak_no_local_paths_and_detect_tampering(layout):
    identity = load_identity(layout)
    entry = sign_entry(identity, manifest(), "c" * 64)
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
