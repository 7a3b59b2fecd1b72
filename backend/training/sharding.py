"""The trainer's state when the base is sharded across processes with FSDP (``accelerate launch --use_fsdp``).

Under FSDP2 every parameter is a DTensor holding this process's shard, so the adapter and the optimizer
state are gathered whole before they are written (a collective: every process calls these functions,
in the same order) and spread back into shards when a checkpoint is read. Only the adapter's weights
are gathered, never the base: a checkpoint of a sharded 70B run is the same few megabytes as any other.
Without sharding these are peft's and torch's own calls.

accelerate turns FSDP on only for accelerators (GPUs and the like); PyTorch's FSDP2 itself runs on CPU
processes over gloo too, so when the launch asked for FSDP on CPUs the trainer takes the same FSDP path
(that is how it is tested without GPUs).
"""

from __future__ import annotations

import os
from typing import Any


def make_accelerator() -> Any:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" and accelerator.distributed_type == DistributedType.MULTI_CPU:
        accelerator.state.fsdp_plugin = FullyShardedDataParallelPlugin()  # read from the FSDP_* settings the launch wrote
        accelerator.state.distributed_type = DistributedType.FSDP
    return accelerator


def is_sharded(accelerator: Any) -> bool:
    from accelerate.utils import DistributedType

    return bool(accelerator.distributed_type == DistributedType.FSDP)


def sharded_parameters(model: Any) -> int:
    """How many of the model's parameters are held as shards (DTensors): 0 unless FSDP is on."""
    from torch.distributed.tensor import DTensor

    return sum(1 for parameter in model.parameters() if isinstance(parameter, DTensor))


def _adapter_parameters(model: Any) -> dict[str, Any]:
    """peft's name for each adapter weight -> the parameter itself (this process's shard under FSDP)."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model, state_dict=model.state_dict(keep_vars=True))


def _whole(tensor: Any) -> Any:
    from torch.distributed.tensor import DTensor

    whole = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
    return whole.detach().to("cpu", copy=True).contiguous()


def adapter_state(model: Any) -> dict[str, Any]:
    """The adapter's weights, whole, under peft's names (what checkpoints and adapter files hold)."""
    return {name: _whole(parameter) for name, parameter in _adapter_parameters(model).items()}


def trainable_state(model: Any) -> dict[str, Any]:
    """The same weights under the model's own names, as ``save_pretrained(state_dict=…)`` takes them."""
    return {name: _whole(value) for name, value in model.state_dict(keep_vars=True).items() if value.requires_grad}


def load_adapter_state(model: Any, state: dict[str, Any]) -> None:
    """Put whole adapter weights (peft's names) into the model, each process keeping its own shard."""
    import torch
    from peft import set_peft_model_state_dict
    from torch.distributed.tensor import DTensor, distribute_tensor

    parameters = _adapter_parameters(model)
    if not any(isinstance(p, DTensor) for p in parameters.values()):
        set_peft_model_state_dict(model, state)
        return
    with torch.no_grad():
        for name, parameter in parameters.items():
            whole = state[name].to(dtype=parameter.dtype, device=parameter.device_mesh.device_type)
            parameter.copy_(distribute_tensor(whole, parameter.device_mesh, parameter.placements, src_data_rank=None))


def optimizer_state(model: Any, optimizer: Any, sharded: bool) -> dict[str, Any]:
    """The optimizer's state to checkpoint: whole on the main process under FSDP (empty elsewhere)."""
    if not sharded:
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, getattr(optimizer, "optimizer", optimizer),
                                    options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer_state(model: Any, optimizer: Any, state: dict[str, Any], sharded: bool) -> None:
    if not sharded:
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, getattr(optimizer, "optimizer", optimizer), state,
                             options=StateDictOptions(full_state_dict=True))
