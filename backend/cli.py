"""The ``orch-mind`` command: one subcommand per capability, thin like the bridge.

Domain errors are rendered here (and only here for the CLI) as a message and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from backend import __version__
from backend.config import DataLayout
from backend.errors import OrchMindError

console = Console(stderr=False)
err_console = Console(stderr=True)


class OrchGroup(click.Group):
    """Turns OrchMindError into a clear message and exit code 1, anywhere in the CLI."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OrchMindError as exc:
            err_console.print(f"[bold red]Error[/] ({exc.code}): {exc.message}")
            sys.exit(1)


@click.group(cls=OrchGroup)
@click.version_option(__version__, prog_name="orch-mind")
def main() -> None:
    """Orch-Mind: your private AI, on your computer."""
    from backend.logging_setup import configure_logging

    configure_logging()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def doctor(as_json: bool) -> None:
    """Report what is installed, which engines are reachable, and where data lives."""
    from backend.doctor import report_dict, run_checks

    layout = DataLayout.current()
    checks = run_checks(layout)
    report = report_dict(checks, layout)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        table = Table(title=f"Orch-Mind {__version__} — data in {layout.root}")
        table.add_column("check")
        table.add_column("status")
        table.add_column("detail", overflow="fold")
        for check in checks:
            mark = "[green]ok[/]" if check.ok else ("[red]missing[/]" if check.required else "[yellow]no[/]")
            table.add_row(check.name, mark, check.detail)
        console.print(table)
        console.print("[green]Ready.[/]" if report["ready"] else "[red]Not ready: see the missing items above.[/]")
    sys.exit(0 if report["ready"] else 1)


from backend.chat.cli import COMMANDS as CHAT_COMMANDS  # noqa: E402
from backend.inference.cli import COMMANDS as INFERENCE_COMMANDS  # noqa: E402
from backend.memory.cli import COMMANDS as MEMORY_COMMANDS  # noqa: E402 - subcommands register below
from backend.p2p.cli import COMMANDS as P2P_COMMANDS  # noqa: E402
from backend.training.cli import COMMANDS as TRAINING_COMMANDS  # noqa: E402

for _command in (*MEMORY_COMMANDS, *CHAT_COMMANDS, *INFERENCE_COMMANDS, *TRAINING_COMMANDS, *P2P_COMMANDS):
    main.add_command(_command)


LLAMA_TOOLS = ("convert_lora_to_gguf.py", "convert_hf_to_gguf.py")


@main.command("trainer", hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def trainer(args: tuple[str, ...]) -> None:
    """The training subprocess (how the bundle runs it: there is no separate Python there)."""
    from backend.training.trainer import main as trainer_main

    sys.exit(trainer_main(list(args)))


@main.command("run-tool", hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("script", type=click.Choice(LLAMA_TOOLS))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run_tool(script: str, args: tuple[str, ...]) -> None:
    """Run one of llama.cpp's converter scripts in this interpreter (the bundle's ``python script.py``)."""
    import runpy

    from backend.training.export import llama_tools_dir

    tools = llama_tools_dir()
    sys.path[:0] = [str(tools / "gguf-py"), str(tools)]
    sys.argv = [str(tools / script), *args]
    runpy.run_path(str(tools / script), run_name="__main__")


def register(command: click.Command) -> None:
    """Let other packages add subcommands (app/ adds ``app``) without backend importing them."""
    main.add_command(command)


if __name__ == "__main__":
    main()
