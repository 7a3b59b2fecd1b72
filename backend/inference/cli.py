"""Inference subcommands: ``serve``, ``models list|add|discover|info|create|delete``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

console = Console()


@click.command("serve")
@click.option("--port", type=click.IntRange(1024, 65535), default=11435, show_default=True,
              help="Port on 127.0.0.1 (11434 is Ollama's own).")
def serve_command(port: int) -> None:
    """Run the embedded engine on 127.0.0.1 for any Ollama or OpenAI-compatible client."""
    from backend.inference.engine import EmbeddedEngine

    engine = EmbeddedEngine(port=port)
    console.print(f"Orch-Mind engine on {engine.host}\n  Ollama clients: OLLAMA_HOST={engine.host}\n"
                  f"  OpenAI clients: base_url={engine.host}/v1 (any api_key)\n  models: "
                  + ", ".join(m.name for m in engine.store.list()), soft_wrap=True)
    engine.serve_forever()


@click.group("models")
def models_group() -> None:
    """Models: list, add a GGUF you have, find the ones other apps keep, create and delete."""


def _size(size: int) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


@models_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def list_command(as_json: bool) -> None:
    """The models the engine serves, with what each is; added models whose file changed say so."""
    import json

    from backend.inference.engine import connect
    from backend.inference.model_store import ModelStore

    connection = connect()
    rows = []
    for model in connection.client.list().models:
        details = model.details
        rows.append({"name": model.model, "size": model.size, "family": details.family if details else "",
                     "parameters": details.parameter_size if details else "",
                     "quantization": details.quantization_level if details else "", "available": True})
    if connection.kind == "embedded":
        for manifest in ModelStore().list():
            if reason := manifest.unavailable_reason():
                rows.append({"name": manifest.name, "size": 0, "family": "", "parameters": "", "quantization": "",
                             "available": False, "reason": reason})
    if as_json:
        click.echo(json.dumps({"engine": connection.kind, "host": connection.host, "models": rows}, indent=2))
        return
    console.print(f"engine: {connection.kind} at {connection.host}")
    for row in rows:
        if row["available"]:
            console.print(f"  {row['name']}  {row['family']} {row['parameters']} {row['quantization']}  {_size(row['size'])}",
                          markup=False, highlight=False)
        else:
            console.print(f"  [red]{row['name']}  unavailable: {row['reason']}[/]")


@models_group.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Name to give the model (default: from the file name, e.g. llama-3.2-3b-q4_k_m).")
@click.option("--copy", is_flag=True, help="Copy the file into Orch-Mind's data folder instead of using it where it is "
                                           "(for files on removable or network drives).")
@click.option("--json", "as_json", is_flag=True, help="Print the registered model as JSON.")
def add_command(path: Path, name: str | None, copy: bool, as_json: bool) -> None:
    """Add a GGUF model file (used in place; its SHA-256 is recorded so a changed file is noticed)."""
    import json

    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from backend.inference.model_files import add_gguf
    from backend.inference.model_store import ModelStore

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), transient=True, disable=as_json) as progress:
        task = progress.add_task("copying" if copy else "hashing", total=None)
        manifest = add_gguf(ModelStore(), path, name=name, copy=copy,
                            progress=lambda done, total: progress.update(task, completed=done, total=total))
    info = manifest.info or {}
    if as_json:
        click.echo(json.dumps({"name": manifest.name, "path": manifest.base_path, "source": manifest.source, "info": info}, indent=2))
        return
    console.print(f"Added [bold]{manifest.name}[/]: {info.get('architecture')} {info.get('parameter_label')} "
                  f"{info.get('quantization')}, context {info.get('context_length')}"
                  + ("" if info.get("chat_template") else " [yellow](no chat template: a base model)[/]"))


@models_group.command("discover")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def discover_command(as_json: bool) -> None:
    """Find GGUF models that Ollama, LM Studio, Jan, GPT4All or the Hugging Face cache keep here (read-only)."""
    import json

    from backend.config import load_settings
    from backend.inference.model_discovery import configured_locations, discover_models
    from backend.inference.model_store import ModelStore

    known = {m.source["path"]: m.name for m in ModelStore().list() if m.source}
    found = discover_models(configured_locations(load_settings().model_locations), known)
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2))
        return
    if not found.models:
        console.print("No models found in " + ", ".join(a for a, roots in found.searched.items() if roots) + ".")
    for model in found.models:
        info = model.info or {}
        state = f"added as {model.added_as}" if model.added_as else f"orch-mind models add '{model.path}' --name {model.suggested_name}"
        console.print(f"  [{model.app}] {model.label}  {info.get('architecture', '')} {info.get('parameter_label', '')} "
                      f"{info.get('quantization', '')} {_size(model.size)}\n      {state}", markup=False, highlight=False)
    for skipped in found.skipped:
        console.print(f"  [dim]skipped {skipped['path']}: {skipped['reason']}[/]")


@models_group.command("info")
@click.argument("model")
@click.option("--context", type=click.IntRange(64, 1_048_576), default=4096, show_default=True,
              help="Context length (tokens) to estimate memory for.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info_command(model: str, context: int, as_json: bool) -> None:
    """What a model (a name, or a .gguf path) is, and whether it fits this machine's free memory."""
    import json

    from backend.inference.gguf_info import fit_report, read_gguf_info
    from backend.inference.model_store import ModelStore

    path = Path(model).expanduser()
    if not path.is_file():
        path = Path(ModelStore().get(model).base_path)
    info = read_gguf_info(path)
    fit = fit_report(info, context)
    from backend.training.base_preparation import preparation_cost
    from backend.training.trainability import training_support

    untrainable = training_support(info.to_dict())
    preparing = None if untrainable else preparation_cost(path)
    if as_json:
        click.echo(json.dumps({"info": info.to_dict(), "fit": fit, "training": {
            "supported": untrainable is None, "reason": untrainable,
            "preparation": preparing.to_dict() if preparing else None}}, indent=2))
        return
    console.print(f"{info.name}: {info.architecture}, {info.parameter_label} parameters, {info.quantization}, "
                  f"{_size(info.file_size)}, trained context {info.context_length}", markup=False, highlight=False)
    console.print(f"chat template: {'yes' if info.chat_template else 'none (a base model)'}; embedding model: {info.is_embedding_model}")
    verdict = "[green]fits[/]" if fit["fits_ram"] else "[red]does not fit[/]"
    console.print(f"needs about {_size(fit['needed_bytes'])} at {context} tokens; {_size(fit['free_ram_bytes'])} RAM free: {verdict}")
    if preparing:
        console.print(f"training: prepared once into {_size(preparing.disk_bytes)} on disk, peak {_size(preparing.peak_ram_bytes)} "
                      "of memory while preparing (then see `orch-mind train --preview`)")
    else:
        console.print(f"training: not possible ({untrainable})", markup=False)


@models_group.command("prepared")
@click.option("--remove", "remove_id", default=None, metavar="ID", help="Remove this prepared base (its id from the list).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def prepared_command(remove_id: str | None, as_json: bool) -> None:
    """Bases prepared for training (bf16 copies of GGUFs) and their sizes; --remove frees one."""
    import json

    from backend.config import DataLayout
    from backend.training.base_preparation import list_prepared, remove_prepared

    root = DataLayout.current().prepared_bases_dir
    if remove_id:
        console.print(f"Removed {remove_id}: {_size(remove_prepared(root, remove_id))} freed.")
        return
    bases = list_prepared(root)
    if as_json:
        click.echo(json.dumps([b.to_dict() for b in bases], indent=2))
        return
    for base in bases:
        state = "" if base.complete else "  (stopped part-way; goes on next time)"
        console.print(f"{base.id}  {base.gguf}  {_size(base.bytes)}{state}", markup=False, highlight=False)
    if not bases:
        console.print("No base prepared yet.")


@models_group.command("create")
@click.argument("name")
@click.option("--from", "base", required=True, help="The base model (one the engine lists).")
@click.option("--system", default=None, help="A system prompt baked into the model.")
def create_command(name: str, base: str, system: str | None) -> None:
    """Create a model from a base (adapters are deployed with `orch-mind adapters deploy`)."""
    import ollama

    from backend.inference.engine import connect
    from backend.inference.engine_errors import engine_error

    try:
        connect().client.create(model=name, from_=base, system=system)
    except ollama.ResponseError as exc:
        raise engine_error(exc) from exc
    console.print(f"Created {name} from {base}.")


@models_group.command("delete")
@click.argument("name")
def delete_command(name: str) -> None:
    import ollama

    from backend.inference.engine import connect
    from backend.inference.engine_errors import engine_error

    try:
        connect().client.delete(name)
    except ollama.ResponseError as exc:
        raise engine_error(exc) from exc
    console.print(f"Deleted {name}.")


COMMANDS = (serve_command, models_group)
