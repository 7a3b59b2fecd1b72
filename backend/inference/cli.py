"""Inference subcommands: ``serve``, ``ask``, ``models list``."""

from __future__ import annotations

import click
from rich.console import Console

console = Console()


@click.command("serve")
@click.option("--port", type=click.IntRange(1024, 65535), default=11435, show_default=True,
              help="Port on 127.0.0.1 (11434 is Ollama's own).")
def serve_command(port: int) -> None:
    """Run the embedded Ollama-compatible engine on 127.0.0.1 for any Ollama client."""
    from backend.inference.engine import EmbeddedEngine

    engine = EmbeddedEngine(port=port)
    console.print(f"Orch-Mind engine on {engine.host} (OLLAMA_HOST={engine.host}); models: "
                  + ", ".join(m.name for m in engine.store.list()))
    engine.serve_forever()


@click.command("ask")
@click.argument("prompt")
@click.option("-m", "--model", default=None, help="Model name (default: the chat model in settings).")
@click.option("--seed", type=int, default=None, help="Sampling seed, for repeatable answers.")
def ask_command(prompt: str, model: str | None, seed: int | None) -> None:
    """Ask one question and stream the answer."""
    from backend.config import load_settings
    from backend.inference.engine import connect

    connection = connect()
    options = {"seed": seed} if seed is not None else {}
    for part in connection.client.chat(model=model or load_settings().chat_model, stream=True, options=options,
                                       messages=[{"role": "user", "content": prompt}]):
        console.print(part.message.content, end="", markup=False, highlight=False)
    console.print()


@click.group("models")
def models_group() -> None:
    """List the models the engine serves."""


@models_group.command("list")
def list_command() -> None:
    from backend.inference.engine import connect

    connection = connect()
    console.print(f"engine: {connection.kind} at {connection.host}")
    for model in connection.client.list().models:
        console.print(f"  {model.model}  {model.size / 1e6:.0f} MB")


COMMANDS = (serve_command, ask_command, models_group)
