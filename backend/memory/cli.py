"""Memory subcommands: ``import``, ``search``, ``memory stats|delete-source``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from backend.config import load_settings
from backend.memory.search import MAX_RESULTS

console = Console()


def _services():
    from backend.memory.embeddings import get_embedder
    from backend.memory.store import get_store

    return get_store(), get_embedder(load_settings().embedding_model)


@click.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--mode", type=click.Choice(["increment", "overwrite"]), default="increment", show_default=True,
              help="increment skips unchanged conversations; overwrite replaces this source's memory.")
@click.option("--all-branches", is_flag=True, help="Also keep edited/regenerated branches (searchable, never training data).")
def import_command(path: Path, mode: str, all_branches: bool) -> None:
    """Import a ChatGPT export (.zip or conversations.json), a Claude export, or a folder of notes."""
    from backend.memory.ingest import import_path

    store, embedder = _services()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("starting", total=1)

        last_line = ""

        def report(status: str, done: int, total: int) -> None:
            nonlocal last_line
            progress.update(task, description=status, completed=done, total=max(total, 1))
            if not console.is_terminal:  # piped to a log or a script: one plain line per status and 10% step
                line = f"{status} {done * 100 // max(total, 1) // 10 * 10}%"
                if line != last_line:
                    console.print(f"{status}: {done}/{total}", markup=False, highlight=False)
                    last_line = line

        stats = import_path(store, path, embedder, mode=mode, all_branches=all_branches, progress=report)  # type: ignore[arg-type]
    console.print(
        f"[green]Imported[/] {stats.conversations} conversations from {path.name}: {stats.added} new, "
        f"{stats.updated} updated, {stats.unchanged} unchanged; {stats.chunks} chunks, "
        f"{stats.vectors_embedded} embedded, in {stats.seconds:.1f}s."
    )


@click.command("search")
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(1, MAX_RESULTS), default=5, show_default=True, help="How many results.")
@click.option("--mode", type=click.Choice(["hybrid", "semantic", "keyword"]), default="hybrid", show_default=True,
              help="hybrid: meaning and exact words together; semantic: meaning only; keyword: exact words only.")
@click.option("--role", "roles", multiple=True, help="Only these roles (user, assistant, tool, note). Repeatable.")
@click.option("--source", "sources", multiple=True, help="Only these source ids (see `memory stats`). Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of hits.")
def search_command(query: str, k: int, mode: str, roles: tuple[str, ...], sources: tuple[str, ...], as_json: bool) -> None:
    """Search memory by meaning and keywords."""
    from backend.memory.search import MemorySearch, SearchFilters

    store, embedder = _services()
    hits = MemorySearch(store, embedder).search(query, k, mode, SearchFilters(source_ids=sources, roles=roles))  # type: ignore[arg-type]
    if as_json:
        click.echo(json.dumps([hit.to_dict() for hit in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        console.print("No memories matched.")
    for number, hit in enumerate(hits, 1):
        # Ranked best first; the raw score is left out (hybrid, semantic and keyword scores are on different scales).
        console.print(f"[bold]{number}. {escape(hit.title)}[/] [dim]({hit.role}, {hit.kind}, {hit.created_at or 'no date'})[/]",
                      highlight=False)
        console.print(f"   {hit.snippet}", markup=False, highlight=False)


@click.group("memory")
def memory_group() -> None:
    """Inspect and manage memory."""


@memory_group.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def stats_command(as_json: bool) -> None:
    """Counts of conversations, messages in memory and chunks, sources, and activity per month."""
    from backend.memory.stats import memory_stats
    from backend.memory.store import get_store

    stats = memory_stats(get_store())
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    console.print(f"{stats['conversations']} conversations, {stats['messages']} messages in memory, {stats['chunks']} chunks "
                  f"(embedding model: {stats['embedding_model'] or 'none yet'}); {stats['kept_out']} kept out of memory "
                  "(tool calls, reasoning, tool output)")
    for source in stats["sources"]:
        console.print(f"  source {escape(source['id'])} ({source['kind']}, {escape(source['label'])}): {source['conversations']} "
                      f"conversations, {source['messages']} messages")
    peak = max((m["messages"] for m in stats["per_month"]), default=0)
    for month in stats["per_month"]:
        bar = "█" * max(1, round(40 * month["messages"] / peak)) if peak else ""
        console.print(f"  {month['month']} {bar} {month['messages']}")


@memory_group.command("delete-source")
@click.argument("source_id")
def delete_source_command(source_id: str) -> None:
    """Delete a source with all its conversations, messages, chunks and vectors."""
    from backend.memory.ingest import delete_source
    from backend.memory.store import get_store

    removed = delete_source(get_store(), source_id)
    console.print(f"Deleted source {source_id}: {removed} conversations removed.")


COMMANDS = (import_command, search_command, memory_group)
