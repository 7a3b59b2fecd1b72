"""Training subcommands: ``train`` (and ``--resume``), ``adapters list|show|delete|export|deploy``."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from backend.training.merge import DEFAULT_METHOD, METHODS
from backend.training.run_folder import RunFolder

console = Console()


def _follow(title: str, work: Any) -> Any:
    """Run ``work(context)`` as a job, drawing its progress (with live loss) until it ends."""
    from backend.jobs import JobRegistry

    registry = JobRegistry()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[detail]}"), TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task(title, total=None, detail="")
        lock = threading.Lock()

        def on_event(event: dict[str, Any]) -> None:
            with lock:
                if event["type"] == "progress":
                    detail = f"loss {event['loss']:.4f}  {event['tokens_per_s']:.0f} tok/s" if "loss" in event else ""
                    progress.update(task, description=event["status"], completed=event["completed"],
                                    total=event["total"] or None, detail=detail)
                elif event["type"] == "eval" and event.get("eval_loss") is not None:
                    label = "base model" if event.get("base") else f"step {event['step']}"
                    progress.console.print(f"validation loss ({label}): {event['eval_loss']:.4f}")
                elif event["type"] == "early_stop":
                    progress.console.print(f"Held-out loss stopped improving: stopped at step {event['step']} of {event['total']}, "
                                           f"keeping the adapter of step {event['best_step']}.")

        registry.subscribe(on_event)
        job_id = registry.start("train", title, work)
        try:
            record = registry.wait(job_id)
        except KeyboardInterrupt:
            registry.cancel(job_id)
            record = registry.wait(job_id)
    return record


def _prepared(title: str, work: Any) -> Any:
    """``work(context)`` with its steps drawn (preparing a base shows tensor n of N); its result, or its error."""
    from backend.errors import ReportedError

    record = _follow(title, work)
    if record.state == "cancelled":
        raise click.Abort()
    if record.state != "succeeded":
        raise ReportedError(record.error["message"], record.error["code"])
    return record.result


def _report(record: Any, layout: Any, name: str) -> None:
    from backend.errors import ReportedError
    from backend.training.export import export_run

    if record.state == "cancelled" or (record.result or {}).get("stopped"):
        console.print(f"Stopped; resume with: orch-mind train --resume {Path(record.result['job_dir']).name if record.result else ''}")
        return
    if record.state != "succeeded":
        raise ReportedError(record.error["message"], record.error["code"])
    evaluation = record.result["evaluation"]
    table = Table(title="Evaluation on held-out conversations")
    for column in ("", "base", "fine-tuned"):
        table.add_column(column)
    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    table.add_row("validation loss", fmt(evaluation["base_eval_loss"]), fmt(evaluation["eval_loss"]))
    table.add_row("perplexity", fmt(evaluation["base_perplexity"]), fmt(evaluation["perplexity"]))
    for sample in evaluation["samples"]:
        table.add_row(sample["prompt"][:40], sample["base"][:60], sample["fine_tuned"][:60])
    console.print(table)
    manifest = export_run(layout, Path(record.result["job_dir"]), name)
    console.print(f"[green]Saved adapter {manifest.name}[/] (safetensors + GGUF). Deploy: orch-mind adapters deploy {manifest.name}")


def _dataset_line(stats: dict[str, Any]) -> str:
    line = (f"{stats['train_samples']} training and {stats['validation_samples']} validation samples, "
            f"{stats['trained_tokens']} trained tokens")
    if stats.get("split_turns"):
        line += f", {stats['split_turns']} over-long exchanges split at sentences"
    if stats.get("left_out_turns"):
        line += f", {stats['left_out_turns']} exchanges left out"
    return line


def _print_preview(preview: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(preview, indent=2, ensure_ascii=False))
        return
    stats, plan = preview["stats"], preview["plan"]
    console.print(f"{stats['conversations']} conversations: {_dataset_line(stats)}", highlight=False)
    for title in stats["left_out"]:
        console.print(f"  left out (does not fit even split at sentences; raise --max-tokens): {title}", markup=False, highlight=False)
    console.print(f"Plan: {plan['steps']} steps ({plan['epochs']} passes of {plan['steps_per_epoch']}), learning rate "
                  f"{plan['learning_rate']:.2g}, about {plan['estimated_minutes']} min", highlight=False)
    console.print(_cost_line(plan), highlight=False)
    if plan.get("advice"):
        console.print(f"[red]{plan['advice']}[/]")
    for number, sample in enumerate(preview["samples"], 1):
        console.rule(f"sample {number}: {sample['tokens']} tokens, {sample['trained_tokens']} trained")
        console.print(sample["text"], markup=False, highlight=False)


def _cost_line(plan: dict) -> str:
    """What the run will take of this machine, for the path that will run."""
    path = {"cpu-fp32": "CPU (fp32)", "cpu-bf16": "CPU (bf16)", "cpu-4bit": "CPU, 4-bit base", "cpu-8bit": "CPU, 8-bit base",
            "cuda-qlora": "GPU, QLoRA (4-bit base)", "cuda-8bit": "GPU, 8-bit base", "cuda-bf16": "GPU (bf16)",
            "cuda-fp32": "GPU (fp32)", "cuda-fsdp": f"{plan.get('processes', 1)} GPUs, the base sharded across them (FSDP, bf16)",
            }.get(plan.get("path", ""), plan.get("path", ""))
    parts = [f"Runs on {path}: about {plan.get('ram_bytes', plan['memory_bytes']) / 1e9:.1f} GB of RAM"]
    if plan.get("vram_bytes"):
        parts.append(f"{plan['vram_bytes'] / 1e9:.1f} GB of GPU memory")
    parts.append(f"{plan.get('disk_bytes', 0) / 1e6:.0f} MB of disk")
    line = ", ".join(parts)
    if plan.get("gradient_checkpointing"):
        line += f"; micro-batches of {plan['batch_size']} x {plan['grad_accum']}, gradient checkpointing (to fit)"
    return line


@click.command("train")
@click.option("--base", default="smollm2", show_default=True, help="Base model: your model, an Ollama model, a .gguf or a folder.")
@click.option("--epochs", type=click.IntRange(1, 100), default=None, help="Passes over the data (default: planned from the data size).")
@click.option("--rank", type=click.IntRange(1, 256), default=8, show_default=True, help="LoRA rank.")
@click.option("--alpha", type=click.IntRange(1, 1024), default=16, show_default=True, help="LoRA alpha.")
@click.option("--lr", "learning_rate", type=float, default=None, help="Peak learning rate (default: planned from the model and steps).")
@click.option("--batch-size", type=click.IntRange(1, 512), default=4, show_default=True,
              help="Samples per micro-batch (made smaller by the plan when memory is short; the optimizer step stays the same).")
@click.option("--max-tokens", type=click.IntRange(32, 32768), default=512, show_default=True, help="Longest sample.")
@click.option("--voice", type=click.Choice(["assistant", "user"]), default="assistant", show_default=True,
              help="assistant: learn the answers; user: learn to write like you.")
@click.option("--source", "sources", multiple=True, help="Only these memory sources (see `memory stats`).")
@click.option("--quantization", type=click.Choice(["auto", "none", "4bit", "8bit"]), default="auto", show_default=True,
              help="bitsandbytes base quantization (QLoRA with 4bit); auto: 4bit for bases of about 1B and up on a CUDA GPU.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16-mixed"]), default="auto", show_default=True,
              help="auto: bf16 autocast on CUDA GPUs with bf16 and CPUs with AMX, else fp32 (faster there).")
@click.option("--name", default=None, help="Name of the resulting adapter (default: adapter-<run>).")
@click.option("--resume", "resume_run", default=None, metavar="RUN", help="Resume a stopped run (train-…) from its checkpoint.")
@click.option("--preview", is_flag=True, help="Show what would be trained (samples exactly as trained, splits, the plan); train nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --preview: print it as JSON.")
def train_command(base: str, epochs: int | None, rank: int, alpha: int, learning_rate: float | None, batch_size: int, max_tokens: int,
                  voice: str, sources: tuple[str, ...], quantization: str, precision: str, name: str | None,
                  resume_run: str | None, preview: bool, as_json: bool) -> None:
    """Fine-tune a LoRA adapter on your conversations, with live progress and a before/after evaluation."""
    from backend.config import DataLayout, load_settings
    from backend.memory.store import get_store
    from backend.training.config import TrainConfig
    from backend.training.runs import find_run, options_for, prepare_run, preview_run, run_training
    from backend.training.sources import conversations_from_memory

    layout = DataLayout.current()
    if preview:
        config = TrainConfig(base=base, epochs=epochs, rank=rank, alpha=alpha, learning_rate=learning_rate, batch_size=batch_size,
                             max_tokens=max_tokens, voice=voice, quantization=quantization, precision=precision,
                             system_prompt=load_settings(layout).system_prompt)
        conversations = conversations_from_memory(get_store(layout), sources)
        if as_json:  # stdout is the JSON alone
            _print_preview(preview_run(layout, config, conversations, options_for(config)), as_json)
        else:
            _print_preview(_prepared("previewing", lambda ctx: preview_run(layout, config, conversations, options_for(config),
                                                                           context=ctx)), as_json)
        return
    if resume_run:
        job_dir = find_run(layout, resume_run)
        record = _follow(f"resuming {resume_run}", lambda ctx: run_training(ctx, job_dir, resume=True))
    else:
        config = TrainConfig(base=base, epochs=epochs, rank=rank, alpha=alpha, learning_rate=learning_rate, batch_size=batch_size,
                             max_tokens=max_tokens, voice=voice, quantization=quantization, precision=precision,
                             system_prompt=load_settings(layout).system_prompt)
        conversations = conversations_from_memory(get_store(layout), sources)
        job_dir = Path(_prepared("preparing", lambda ctx: {"job_dir": str(prepare_run(layout, config, conversations,
                                                                                    context=ctx))})["job_dir"])
        stats = RunFolder(job_dir).dataset_stats()
        plan = RunFolder(job_dir).plan()
        console.print(f"Run {job_dir.name}: {_dataset_line(stats)}")
        console.print(f"Plan: {plan['steps']} steps ({plan['epochs']} passes of {plan['steps_per_epoch']}), learning rate "
                      f"{plan['learning_rate']:.2g}, about {plan['estimated_minutes']} min; stops early when held-out loss "
                      f"has not improved for {plan['patience']} checks")
        console.print(_cost_line(plan), highlight=False)
        record = _follow("training", lambda ctx: run_training(ctx, job_dir))
    _report(record, layout, name or f"adapter-{job_dir.name.removeprefix('train-')}")


@click.group("adapters")
def adapters_group() -> None:
    """Your LoRA adapters."""


@adapters_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def adapters_list(as_json: bool) -> None:
    from backend.training.adapters import AdapterStore

    adapters = AdapterStore().list()
    if as_json:
        click.echo(json.dumps([a.to_dict() for a in adapters], indent=2))
        return
    for a in adapters:
        console.print(f"{a.name}  base={a.base['reference']}  r={a.rank}  eval_loss={a.metrics.get('eval_loss')}")


@adapters_group.command("show")
@click.argument("name")
def adapters_show(name: str) -> None:
    from backend.training.adapters import AdapterStore

    click.echo(json.dumps(AdapterStore().get(name).to_dict(), indent=2))


@adapters_group.command("delete")
@click.argument("name")
def adapters_delete(name: str) -> None:
    from backend.training.adapters import AdapterStore

    AdapterStore().delete(name)
    console.print(f"Deleted {name}.")


@adapters_group.command("export")
@click.argument("name")
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
@click.option("--merged", is_flag=True,
              help="Write one standalone GGUF model (the adapter folded into its base) for engines without adapters.")
def adapters_export(name: str, destination: Path, merged: bool) -> None:
    """Copy an adapter (safetensors, GGUF, manifest) to a folder, or with --merged write NAME.gguf there."""
    from backend.training.adapters import AdapterStore, validate_adapter_name

    destination.mkdir(parents=True, exist_ok=True)
    if merged:
        from backend.config import DataLayout
        from backend.training.export import merge_to_gguf

        output = destination / f"{validate_adapter_name(name)}.gguf"
        with console.status(f"Folding {name} into its base model, tensor by tensor…") as status:
            report = merge_to_gguf(DataLayout.current(), name, output,
                                   lambda done, total: status.update(f"Folding {name} into its base model: {done}/{total}"))
        raised = ", ".join(f"{count} at {kind}" for kind, count in report.raised.items())
        console.print(f"Exported to {output} ({report.bytes / 1e9:.2f} GB; {report.merged} tensors merged"
                      + (f", {raised} where the base's quantization would have erased the change" if raised else "") + ")")
        return
    console.print(f"Exported to {AdapterStore().export(name, destination)}")


@adapters_group.command("deploy")
@click.argument("name")
@click.option("--model", "model_name", default=None, help="Name of the new model (default: the adapter's name).")
def adapters_deploy(name: str, model_name: str | None) -> None:
    """Create a model from the adapter's base + this adapter, and prove it is active."""
    from backend.config import DataLayout
    from backend.inference.engine import get_connection
    from backend.training.deploy import deploy_adapter

    layout = DataLayout.current()
    result = deploy_adapter(get_connection(layout).client, layout, name, model_name or name)
    console.print(f"[green]Deployed {result['model']}[/] on {result['base']}. Smoke prompt: {result['smoke']['prompt']}")
    console.print(f"  base:    {result['smoke']['base'][:100]}", markup=False)
    console.print(f"  adapted: {result['smoke']['adapted'][:100]}", markup=False)


@adapters_group.command("merge")
@click.argument("names", nargs=-1, required=True)
@click.option("--method", type=click.Choice(list(METHODS)), default=DEFAULT_METHOD, show_default=True,
              help="How to combine the updates (cat is exact; ties/dare_ties resolve sign conflicts).")
@click.option("--weights", default=None, help="Comma-separated weights, one per adapter (default: equal).")
@click.option("--density", type=click.FloatRange(0.01, 1.0), default=0.5, show_default=True, help="ties/dare_ties: share kept.")
@click.option("--name", "output", required=True, help="Name of the merged adapter.")
def adapters_merge(names: tuple[str, ...], method: str, weights: str | None, density: float, output: str) -> None:
    """Merge adapters trained on the same base, and score them all on your validation data."""
    from backend.config import DataLayout
    from backend.training.merge import merge_scored_on_memory

    parsed = [float(w) for w in weights.split(",")] if weights else None
    manifest = merge_scored_on_memory(DataLayout.current(), list(names), output, method=method,  # type: ignore[arg-type]
                                      weights=parsed, density=density)
    console.print(f"[green]Merged[/] {', '.join(names)} into {manifest.name} ({method}).")
    for name, loss in (manifest.metrics.get("inputs_eval_loss") or {}).items():
        console.print(f"  {name}: validation loss {loss:.4f}" if loss is not None else f"  {name}: no validation data")
    if manifest.metrics.get("eval_loss") is not None:
        console.print(f"  {manifest.name}: validation loss {manifest.metrics['eval_loss']:.4f}")


COMMANDS = (train_command, adapters_group)
