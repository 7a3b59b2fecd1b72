"""A loopback DHT testnet (hyperdht/testnet, every node on 127.0.0.1) for tests, benchmarks and demos.

Nothing it starts touches the public DHT or any non-loopback address; peers given its bootstrap
list and ``host="127.0.0.1"`` stay on this machine.
"""

from __future__ import annotations

import json
import subprocess

from backend.p2p.node_runtime import SIDECAR_DIR, node_executable


class LoopbackTestnet:
    def __init__(self, size: int = 3) -> None:
        self.size = size
        self.process: subprocess.Popen[str] | None = None
        self.bootstrap: list[str] = []

    def __enter__(self) -> LoopbackTestnet:
        self.process = subprocess.Popen([str(node_executable()), "testnet.js", str(self.size)], cwd=SIDECAR_DIR,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("The DHT testnet failed to start.")
        self.bootstrap = [f"{node['host']}:{node['port']}" for node in json.loads(line)["bootstrap"]]
        if any(not b.startswith("127.0.0.1:") for b in self.bootstrap):
            raise RuntimeError(f"The testnet bound a non-loopback address: {self.bootstrap}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
