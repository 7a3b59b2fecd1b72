"""Chat subcommands: ``ask`` (one question) and ``chat`` (interactive), memory-augmented like the app."""

from __future__ import annotations

import click
from rich.console import Console

console = Console()


def _chat_service():
    from backend.chat.service import ChatService
    from backend.config import load_settings

    return load_settings(), ChatService.from_settings()


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


COMMANDS = (ask_command, chat_command)
