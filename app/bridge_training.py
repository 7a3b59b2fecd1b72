"""Bridge methods of the Training screen: preview, start/cancel/resume, runs, adapters, deploy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from app.bridge_requests import TrainingRequest
from app.validation import Identifier, LongText, ShortText, bridge_method
from backend.config import DataLayout, load_settings
from backend.errors import ValidationError, field_problems
from backend.inference.engine import get_connection
from backend.inference.model_store import validate_name
from backend.jobs import JobContext, JobRegistry, Steps
from backend.memory.store import get_store
from backend.training.adapters import AdapterStore, validate_adapter_name
from backend.training.base_models import named_gguf
from backend.training.checkpoints import latest_checkpoint
from backend.training.compare import check_request, compare_adapters
from backend.training.config import TrainConfig
from backend.training.dataset import DatasetOptions
from backend.training.deploy import deploy_adapter
from backend.training.export import export_run
from backend.training.run_folder import RunFolder
from backend.training.runs import find_run, prepare_run, preview_run, run_training
from backend.training.sources import conversations_from_memory


class TrainingBridge:
    _layout: DataLayout
    _jobs: JobRegistry

    def _options(self, request: TrainingRequest) -> DatasetOptions:
        try:
            return DatasetOptions(voice=request.voice, max_tokens=request.max_tokens, title_contains=request.title_contains or None,
                                  date_from=datetime.fromisoformat(request.date_from) if request.date_from else None,
                                  date_to=datetime.fromisoformat(request.date_to) if request.date_to else None,
                                  system_prompt=load_settings(self._layout).system_prompt)
        except ValueError as exc:
            raise ValidationError(f"Invalid data selection: {exc}") from exc

    @bridge_method
    def training_preview(self, request: TrainingRequest) -> dict[str, str]:
        """Start a preview job; its result is exactly what the model will see (rendered samples with their
        token counts, totals) and the plan the Train button would run with the same settings."""
        options = self._options(request)
        config = self._config(request, "my-adapter")
        self._require_base(request.base)
        layout = self._layout

        def run(context: JobContext) -> dict[str, Any]:
            return preview_run(layout, config, conversations_from_memory(get_store(layout)), options, allow_paths=False, context=context)

        return {"job_id": self._jobs.start("preview", "Preview", run)}

    def _require_base(self, base: str) -> None:
        if named_gguf(base, self._layout) is None:  # the UI picks a model by name; paths are for the CLI
            raise ValidationError(f"No base model {base!r} among your models; pick one from the Models list.")

    def _config(self, request: TrainingRequest, adapter_name: str) -> TrainConfig:
        try:
            return TrainConfig(base=request.base, voice=request.voice, epochs=request.epochs, rank=request.rank, alpha=2 * request.rank,
                               learning_rate=request.learning_rate, max_tokens=request.max_tokens, adapter_name=adapter_name,
                               system_prompt=load_settings(self._layout).system_prompt)
        except PydanticValidationError as exc:  # "rank: Input should be less than or equal to 256", not pydantic's page
            raise ValidationError("Check the training settings: " + field_problems(exc, "settings")) from exc
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    @bridge_method
    def training_start(self, request: TrainingRequest) -> dict[str, str]:
        """Start a run; epochs and learning rate left empty (None) are planned from the data size."""
        adapter_name = request.adapter_name
        validate_adapter_name(adapter_name)
        self._require_base(request.base)
        config = self._config(request, adapter_name)
        options = self._options(request)
        layout = self._layout

        def run(context: JobContext) -> dict[str, Any]:
            job_dir = prepare_run(layout, config, conversations_from_memory(get_store(layout)), options, context)
            context.emit("run_started", run=job_dir.name, plan=RunFolder(job_dir).plan())
            return run_training(context, job_dir)

        return {"job_id": self._jobs.start("train", f"Train {adapter_name}", run)}

    @bridge_method
    def training_resume(self, run: Identifier) -> dict[str, str]:
        job_dir = find_run(self._layout, run)
        return {"job_id": self._jobs.start("train", f"Resume {run}", lambda ctx: run_training(ctx, job_dir, resume=True))}

    @bridge_method
    def training_runs(self) -> list[dict[str, Any]]:
        runs = []
        for job_dir in self._layout.run_dirs():
            run = RunFolder(job_dir)
            if not run.is_run():
                continue
            evaluation = run.evaluation()
            checkpoint = latest_checkpoint(run.checkpoints_dir)
            runs.append({"run": job_dir.name, **run.label(),
                         "finished": evaluation is not None, "checkpoint": checkpoint.name if checkpoint else None,
                         "evaluation": evaluation,
                         "history": run.history()})
        return runs

    @bridge_method
    def training_export(self, run: Identifier, name: ShortText) -> dict[str, Any]:
        return export_run(self._layout, find_run(self._layout, run), validate_adapter_name(name)).to_dict()

    @bridge_method
    def adapters_list(self) -> list[dict[str, Any]]:
        return [a.to_dict() for a in AdapterStore(self._layout).list()]

    @bridge_method
    def adapters_delete(self, name: ShortText) -> dict[str, bool]:
        AdapterStore(self._layout).delete(validate_adapter_name(name))
        return {"deleted": True}

    @bridge_method
    def adapters_compare(self, names: list[ShortText], prompts: list[LongText]) -> dict[str, str]:
        """Start a job in which up to three adapters and their base answer the same prompts."""
        names, prompts = check_request(names, prompts)
        layout = self._layout
        system_prompt = load_settings(layout).system_prompt

        def run(context: JobContext) -> dict[str, Any]:
            return compare_adapters(layout, names, prompts, system_prompt, context.progress).to_dict()

        return {"job_id": self._jobs.start("compare", f"Compare {', '.join(names)}", run)}

    @bridge_method
    def adapters_deploy(self, name: ShortText, model_name: ShortText) -> dict[str, str]:
        """Start a deploy job (upload, create, try it on one prompt); cancelling it leaves no model behind."""
        name = validate_adapter_name(name)
        validate_name(model_name)
        AdapterStore(self._layout).get(name)  # an unknown adapter is refused now, not in the job
        layout = self._layout

        def run(context: JobContext) -> dict[str, Any]:
            return deploy_adapter(get_connection(layout).client, layout, name, model_name, steps=Steps(context))

        return {"job_id": self._jobs.start("deploy", f"Deploy {name}", run)}
