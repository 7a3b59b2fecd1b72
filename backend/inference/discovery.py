"""Is a real Ollama daemon reachable? Asked once at start-up, quickly, on the configured host only."""

from __future__ import annotations

import httpx


def probe_ollama(host: str, timeout: float = 0.5) -> str | None:
    """The daemon's version string, or None when nothing answers like Ollama at ``host``."""
    base = host if "://" in host else f"http://{host}"
    try:
        response = httpx.get(base.rstrip("/") + "/api/version", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        version = response.json().get("version")
    except ValueError:
        return None
    return str(version) if version else None
