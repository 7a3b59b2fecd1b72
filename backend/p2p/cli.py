"""``orch-mind p2p``: rooms, sharing, peers, browsing and downloads from the command line.

Rooms and shares are saved in the data dir and served whenever the network runs (the app, or
``p2p serve``). Commands that need live peers (peers, browse, download) start the network for the
time they need it; the app must not be running at the same time (they share one corestore).
"""

from __future__ import annotations

import json
import time
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

console = Console()


def _service() -> Any:
    from backend.p2p.service import P2PService

    return P2PService()


def _online(wait: float) -> Any:
    service = _service()
    service.start()
    if not service.rooms.list():
        service.stop()
        raise click.UsageError("You are in no room: `orch-mind p2p rooms join public` or an invite code.")
    with console.status(f"Looking for peers ({wait:.0f} s)…"):
        service.wait_for(lambda: False, wait)
    return service


@click.group("p2p")
def p2p_group() -> None:
    """Share adapters with peers, browse theirs, download and merge them."""


@p2p_group.group("rooms")
def rooms_group() -> None:
    """The community room and private rooms (invite codes)."""


@rooms_group.command("list")
def rooms_list() -> None:
    for room in _service().list_rooms():
        console.print(f"{room['id']}  {room['kind']:8}  {room['name']}")


@rooms_group.command("join")
@click.argument("code")
@click.option("--name", default="", help="A local label for the room.")
def rooms_join(code: str, name: str) -> None:
    """Join ``public`` (the community room) or a private room by its invite code."""
    service = _service()
    room = service.join_public() if code == "public" else service.join_room(code, name)
    console.print(f"Joined {room.name} ({room.id}).")


@rooms_group.command("create")
@click.argument("name", default="")
def rooms_create(name: str) -> None:
    """Create a private room; give the printed invite code only to people you want in it."""
    room, code = _service().create_room(name)
    console.print(f"Created {room.name} ({room.id}). Invite code (keep it secret):\n[bold]{code}[/]")


@rooms_group.command("leave")
@click.argument("room_id")
def rooms_leave(room_id: str) -> None:
    _service().leave_room(room_id)
    console.print(f"Left {room_id}.")


@p2p_group.command("share")
@click.argument("adapter")
@click.option("--room", "rooms", multiple=True, help="Room id to share in (default: all your rooms).")
def share(adapter: str, rooms: tuple[str, ...]) -> None:
    """Offer one of your adapters (never your data) to the peers in your rooms."""
    with _service() as service:
        result = service.share(adapter, list(rooms) or None)
    console.print(f"Sharing {adapter} ({result['bytes'] / 1e6:.1f} MB) in {', '.join(result['rooms'])}: "
                  "served while Orch-Mind or `orch-mind p2p serve` runs.")


@p2p_group.command("unshare")
@click.argument("adapter")
def unshare(adapter: str) -> None:
    with _service() as service:
        service.unshare(adapter)
    console.print(f"{adapter} is no longer shared.")


@p2p_group.command("serve")
def serve() -> None:
    """Stay online: serve your shared adapters and show peers coming and going (Ctrl-C stops)."""
    service = _service()
    service.subscribe(lambda e: console.print(f"{e['event']}: {e.get('peer', '')[:16]}")
                      if e.get("event") in ("peer-join", "peer-leave") else None)
    with service:
        console.print(f"Online as {service.public_key[:16]}; sharing {len(service.my_shares())} adapter(s).")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


@p2p_group.command("peers")
@click.option("--wait", default=5.0, show_default=True, help="Seconds to look for peers.")
def peers(wait: float) -> None:
    service = _online(wait)
    try:
        for peer in service.peers():
            console.print(f"{peer['peer'][:16]}  rooms={','.join(peer['rooms']) or '-'}  adapters={peer['adapters']}")
    finally:
        service.stop()


@p2p_group.command("browse")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--compatible", is_flag=True, help="Only adapters for a base model you have.")
@click.option("--wait", default=5.0, show_default=True, help="Seconds to collect catalogs.")
def browse(as_json: bool, compatible: bool, wait: float) -> None:
    """Adapters your peers share: name, base model, author, size, metrics."""
    service = _online(wait)
    try:
        rows = service.browse(compatible_only=compatible)
    finally:
        service.stop()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Adapters shared by peers (download with `orch-mind p2p download ID`)")
    for column in ("id", "name", "base", "rank", "MB", "compatible", "by", "shared by"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["id"][:16], row["name"], row["base"].get("reference", ""), str(row["rank"]),
                      f"{row['bytes'] / 1e6:.1f}", "yes" if row["compatible"] else "no",
                      row["author"][:16] + (" (disputed)" if row["disputed"] else ""),
                      "the author" if row["shared_by"] == row["author"] else row["shared_by"][:16])
    console.print(table)


@p2p_group.command("download")
@click.argument("adapter_id")
@click.option("--as", "save_as", default=None, help="Save under another adapter name.")
@click.option("--wait", default=10.0, show_default=True, help="Seconds to wait for a peer's catalog that lists it.")
def download(adapter_id: str, save_as: str | None, wait: float) -> None:
    """Fetch the adapter with ADAPTER_ID (the id column of `p2p browse`, or its first 16+ hex digits),
    verify it and add it to your adapters."""
    service = _service()
    service.start()
    try:
        prefix = adapter_id.strip().lower()
        found = service.wait_for(lambda: any(r["id"].startswith(prefix) for r in service.browse()), wait) if len(prefix) >= 16 else True
        if not found:
            raise click.ClickException(f"No peer offered an adapter with id {prefix} within {wait:.0f} s.")
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      console=console) as progress:
            task = progress.add_task("Downloading", total=None)
            download_id = service.download(prefix, save_as)
            record = service.downloads.get(download_id)
            block = int(record.entry["transfer"]["block_size"]) if record else 0
            progress.update(task, description=f"Downloading {record.name if record else download_id}")

            def on_event(event: dict[str, Any]) -> None:
                if event.get("event") == "download-progress" and event.get("id") == download_id:
                    progress.update(task, completed=event["blocks"] * block, total=event["total"] * block)

            service.subscribe(on_event)
            result = service.wait_download(download_id)
        if result.state != "done":
            raise click.ClickException(f"Download failed and nothing was kept: {result.error}")
        console.print(f"[green]Verified and added[/] {result.name}: deploy it with `orch-mind adapters deploy {result.name}`.")
    finally:
        service.stop()


COMMANDS = (p2p_group,)
