"""Bridge methods of the Network screen: rooms, sharing, peers, browsing, downloads, merge.

The network starts when the screen asks for it (never at app start: nothing goes on the wire until
the user opens the Network screen and goes online). Sidecar events reach the UI as ``network``
events on the same channel as job events.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from pydantic import StringConstraints

from app.events import EventChannel
from app.validation import Identifier, ShortText, bridge_method
from backend.config import DataLayout
from backend.errors import ValidationError
from backend.jobs import JobContext, JobRegistry
from backend.p2p.service import NotOnline, P2PService
from backend.training.adapters import validate_adapter_name
from backend.training.merge import DEFAULT_METHOD, MergeMethod

PeerKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
EntryId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
InviteCode = Annotated[str, StringConstraints(min_length=10, max_length=60)]


class NetworkBridge:
    _layout: DataLayout
    _jobs: JobRegistry
    _events: EventChannel
    _network: P2PService | None = None
    _network_lock = threading.Lock()

    def _service(self) -> P2PService:
        """The service, created on first use; started only by ``network_go_online``."""
        with self._network_lock:
            if self._network is None:
                self._network = P2PService(self._layout)
                self._network.subscribe(lambda event: self._events.publish({**event, "type": "network"}))
            return self._network

    def _online(self) -> P2PService:
        service = self._service()
        if not service.online:
            raise NotOnline("You are offline: press “Go online” first.")
        return service

    def _status(self) -> dict[str, Any]:
        service = self._service()
        return {"online": service.online, "public_key": service.public_key, "rooms": service.list_rooms(),
                "shares": service.my_shares(), "downloads": service.list_downloads()}

    @bridge_method
    def network_status(self) -> dict[str, Any]:
        return self._status()

    @bridge_method
    def network_go_online(self) -> dict[str, Any]:
        service = self._service()
        if not service.online:
            service.start()
        return self._status()

    @bridge_method
    def network_go_offline(self) -> dict[str, Any]:
        self._service().stop()
        return self._status()

    @bridge_method
    def network_join_public(self) -> dict[str, str]:
        return self._service().join_public().public_view()

    @bridge_method
    def network_create_room(self, name: ShortText = "") -> dict[str, str]:
        room, code = self._service().create_room(name)
        return {**room.public_view(), "invite_code": code}

    @bridge_method
    def network_join_room(self, code: InviteCode, name: ShortText = "") -> dict[str, str]:
        return self._service().join_room(code, name).public_view()

    @bridge_method
    def network_leave_room(self, room_id: Identifier) -> dict[str, bool]:
        self._service().leave_room(room_id)
        return {"left": True}

    @bridge_method
    def network_share(self, adapter: ShortText, rooms: list[Identifier] | None = None) -> dict[str, Any]:
        if rooms is not None and len(rooms) > 32:
            raise ValidationError("Too many rooms.")
        name = validate_adapter_name(adapter)
        return self._online().share(name, rooms)

    @bridge_method
    def network_unshare(self, adapter: ShortText) -> dict[str, bool]:
        self._service().unshare(validate_adapter_name(adapter))
        return {"unshared": True}

    @bridge_method
    def network_peers(self) -> list[dict[str, Any]]:
        return self._online().peers()

    @bridge_method
    def network_browse(self, compatible_only: bool = False) -> list[dict[str, Any]]:
        return self._online().browse(compatible_only)

    @bridge_method
    def network_download(self, entry_id: EntryId, save_as: ShortText | None = None) -> dict[str, str]:
        """Download the adapter a browse row names by its signed entry id."""
        target = validate_adapter_name(save_as) if save_as else None
        return {"id": self._online().download(entry_id, target)}

    @bridge_method
    def network_pause(self, download_id: Identifier) -> dict[str, bool]:
        self._online().pause(download_id)
        return {"paused": True}

    @bridge_method
    def network_resume(self, download_id: Identifier) -> dict[str, bool]:
        self._online().resume(download_id)
        return {"resumed": True}

    @bridge_method
    def network_cancel(self, download_id: Identifier) -> dict[str, bool]:
        self._online().cancel(download_id)
        return {"cancelled": True}

    @bridge_method
    def network_block(self, peer: PeerKey) -> dict[str, bool]:
        self._service().block(peer)
        return {"blocked": True}

    @bridge_method
    def adapters_merge(self, names: list[ShortText], name: ShortText, method: MergeMethod = DEFAULT_METHOD) -> dict[str, str]:
        """Merge adapters of the same base into a new one (a job: it loads the base model)."""
        if not 2 <= len(names) <= 8:
            raise ValidationError("Pick between 2 and 8 adapters to merge.")
        sources = [validate_adapter_name(n) for n in names]
        output = validate_adapter_name(name)
        layout = self._layout

        def run(context: JobContext) -> dict[str, Any]:
            from backend.training.merge import merge_scored_on_memory  # torch: only when merging

            context.progress("merging", 0, 1)
            manifest = merge_scored_on_memory(layout, sources, output, method=method)
            return {"adapter": manifest.name, "method": method, "eval_loss": manifest.metrics.get("eval_loss"),
                    "inputs_eval_loss": manifest.metrics.get("inputs_eval_loss")}

        return {"job_id": self._jobs.start("merge", f"Merge into {output}", run)}
