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


def _chat_service():
    from backend.chat.service import ChatService
    from backend.config import load_settings
    from backend.inference.engine import get_connection
    from backend.memory.embeddings import get_embedder
    from backend.memory.store import get_store

    settings = load_settings()
    return settings, ChatService(get_store(), get_embedder(settings.embedding_model), get_connection().client,
                                 top_k=settings.memory_top_k)


def _turn(service, session_id: str, text: str, options: dict) -> None:
    message = service.send(session_id, text, options=options,
                           on_token=lambda token: console.print(token, end="", markup=False, highlight=False))
    console.print()
    for source in message.sources:
        console.print(f"  [dim][{source['number']}] {source['title']} ({(source['created_at'] or '')[:10]})[/]")
    if message.stats.get("dropped_turns"):
        console.print(f"  [yellow]{message.stats['dropped_turns']} earlier messages were left out to fit the context.[/]")


@click.command("ask")
@click.argument("prompt")
@click.option("-m", "--model", default=None, help="Model name (default: the chat model in settings).")
@click.option("--no-memory", is_flag=True, help="Do not use memory for this answer.")
@click.option("--seed", type=int, default=None, help="Sampling seed, for repeatable answers.")
def ask_command(prompt: str, model: str | None, no_memory: bool, seed: int | None) -> None:
    """Ask one question; the answer streams, followed by the memories it used."""
    settings, service = _chat_service()
    session = service.sessions.create(model or settings.chat_model, settings.system_prompt, not no_memory, title=prompt[:60])
    _turn(service, session.id, prompt, {"seed": seed} if seed is not None else {})


@click.command("chat")
@click.option("-m", "--model", default=None, help="Model name (default: the chat model in settings).")
@click.option("--no-memory", is_flag=True, help="Do not use memory in this chat.")
def chat_command(model: str | None, no_memory: bool) -> None:
    """Interactive chat (streaming). An empty line or Ctrl-D ends it; /regen answers again."""
    settings, service = _chat_service()
    session = service.sessions.create(model or settings.chat_model, settings.system_prompt, not no_memory)
    console.print(f"Chatting with {session.model} (memory {'off' if no_memory else 'on'}). Empty line to quit.")
    while True:
        try:
            text = console.input("[bold]you>[/] ").strip()
        except EOFError:
            break
        if not text:
            break
        if text == "/regen":
            console.print(service.send(session.id, "", regenerate=True).content, markup=False, highlight=False)
            continue
        _turn(service, session.id, text, {})
    service.sync_to_memory(session.id)


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


@models_group.command("create")
@click.argument("name")
@click.option("--from", "base", required=True, help="The base model (one the engine lists).")
@click.option("--system", default=None, help="A system prompt baked into the model.")
def create_command(name: str, base: str, system: str | None) -> None:
    """Create a model from a base (adapters are deployed with `orch-mind adapters deploy`)."""
    import ollama

    from backend.errors import OrchMindError
    from backend.inference.engine import connect

    try:
        connect().client.create(model=name, from_=base, system=system)
    except ollama.ResponseError as exc:
        raise OrchMindError(exc.error, code="engine") from exc
    console.print(f"Created {name} from {base}.")


@models_group.command("delete")
@click.argument("name")
def delete_command(name: str) -> None:
    import ollama

    from backend.errors import OrchMindError
    from backend.inference.engine import connect

    try:
        connect().client.delete(name)
    except ollama.ResponseError as exc:
        raise OrchMindError(exc.error, code="engine") from exc
    console.print(f"Deleted {name}.")


COMMANDS = (serve_command, ask_command, chat_command, models_group)
