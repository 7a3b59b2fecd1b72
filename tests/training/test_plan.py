"""The training plan: steps and learning rate chosen from the data, and the plan shown is the one run."""

import pytest

from backend.training.config import TrainConfig
from backend.training.plan import MAX_EPOCHS, TARGET_STEPS, plan_training

SMOLLM2 = {"parameters": 134_515_008, "embedding_length": 576, "block_count": 30}


def test_a_small_set_is_repeated_and_a_large_one_passed_over_once():
    small = plan_training(TrainConfig(), 40, 40 * 200, SMOLLM2)
    medium = plan_training(TrainConfig(), 300, 300 * 200, SMOLLM2)
    large = plan_training(TrainConfig(), 50_000, 50_000 * 200, SMOLLM2)
    assert small.epochs > medium.epochs > large.epochs == 1, "fewer conversations get more passes"
    assert small.steps >= 0.6 * TARGET_STEPS and small.epochs <= MAX_EPOCHS
    assert medium.steps >= TARGET_STEPS
    assert large.steps <= 3000 and large.learning_rate < medium.learning_rate, "long runs take smaller steps"
    assert small.tokens == pytest.approx(small.epochs * 40 * 200, rel=0.05)
    assert small.eval_every * 8 <= small.steps, "enough validation checks to stop early"


def test_what_the_user_sets_is_kept_and_larger_models_get_a_lower_rate():
    fixed = plan_training(TrainConfig(epochs=2, learning_rate=3e-4, eval_every=7), 100, 20_000, SMOLLM2)
    assert (fixed.epochs, fixed.steps, fixed.learning_rate, fixed.eval_every) == (2, 50, 3e-4, 7)
    big = plan_training(TrainConfig(), 100, 20_000, {**SMOLLM2, "parameters": 7_000_000_000})
    assert big.learning_rate < plan_training(TrainConfig(), 100, 20_000, SMOLLM2).learning_rate
    assert big.estimated_minutes > 10 * plan_training(TrainConfig(), 100, 20_000, SMOLLM2).estimated_minutes


LLAMA_1B = {"parameters": 1_174_472_704, "hidden_size": 2048, "num_hidden_layers": 16, "intermediate_size": 8192,
            "num_attention_heads": 32, "vocab_size": 49_152}
GB = 1024**3


def test_on_a_gpu_a_1b_base_defaults_to_qlora_and_a_small_one_does_not():
    big = plan_training(TrainConfig(), 100, 20_000, LLAMA_1B, device="cuda", free_ram=16 * GB, free_vram=8 * GB)
    assert (big.path, big.quantization, big.gradient_checkpointing, big.fits_ram) == ("cuda-qlora", "4bit", True, True)
    full = plan_training(TrainConfig(quantization="none"), 100, 20_000, LLAMA_1B, device="cuda", free_ram=16 * GB, free_vram=8 * GB)
    assert big.vram_bytes + 1.2 * LLAMA_1B["parameters"] < full.vram_bytes, "the 4-bit base, not a bf16 copy, is on the GPU"
    small = plan_training(TrainConfig(), 100, 20_000, SMOLLM2, device="cuda", free_ram=16 * GB, free_vram=8 * GB)
    assert small.quantization == "none" and small.path in ("cuda-bf16", "cuda-fp32")
    cpu = plan_training(TrainConfig(), 100, 20_000, LLAMA_1B, device="cpu", free_ram=64 * GB)
    assert cpu.path == "cpu-fp32" and cpu.quantization == "none" and cpu.vram_bytes is None


def test_short_memory_makes_the_micro_batch_smaller_and_then_says_what_would_fit():
    roomy = plan_training(TrainConfig(batch_size=8), 200, 200 * 400, LLAMA_1B, longest=500, device="cpu", free_ram=64 * GB)
    tight = plan_training(TrainConfig(batch_size=8), 200, 200 * 400, LLAMA_1B, longest=500, device="cpu", free_ram=7 * GB)
    assert roomy.fits_ram and (roomy.batch_size, roomy.grad_accum, roomy.gradient_checkpointing) == (8, 1, False)
    assert tight.fits_ram and tight.gradient_checkpointing and tight.ram_bytes < 7 * GB
    assert tight.batch_size * tight.grad_accum == 8 and tight.steps == roomy.steps, "the same optimizer steps, in smaller pieces"
    hopeless = plan_training(TrainConfig(), 200, 200 * 400, {**LLAMA_1B, "parameters": 70_000_000_000}, device="cpu", free_ram=16 * GB)
    assert not hopeless.fits_ram and "4-bit" in hopeless.advice and "GPU" in hopeless.advice and "B parameters" in hopeless.advice


LLAMA_70B = {"parameters": 70_553_706_496, "hidden_size": 8192, "num_hidden_layers": 80, "intermediate_size": 28672,
             "num_attention_heads": 64, "vocab_size": 128_256}


def test_a_base_that_fits_no_single_gpu_is_sharded_across_all_of_them():
    ram, vram = 16384 * GB, 80 * GB  # a cluster node of 80 GB GPUs; each process loads the whole fp32 base first
    one = plan_training(TrainConfig(), 200, 200 * 400, LLAMA_70B, longest=500, device="cuda", free_ram=ram, free_vram=24 * GB, gpus=1)
    assert not one.fits_ram and one.processes == 1, "4-bit 70B does not fit one 24 GB GPU"
    eight = plan_training(TrainConfig(), 200, 200 * 400, LLAMA_70B, longest=500, device="cuda", free_ram=ram, free_vram=vram, gpus=8)
    assert (eight.processes, eight.path) == (1, "cuda-qlora"), "a 70B fits one 80 GB GPU in 4 bits: it is not sharded"
    big = {**LLAMA_70B, "parameters": 180_000_000_000, "num_hidden_layers": 200}  # past one 80 GB GPU even in 4 bits
    sharded = plan_training(TrainConfig(), 200, 200 * 400, big, longest=500, device="cuda", free_ram=ram, free_vram=vram, gpus=16)
    assert sharded.fits_ram and (sharded.processes, sharded.path, sharded.quantization) == (16, "cuda-fsdp", "none")
    assert 4 * big["parameters"] / 16 < sharded.vram_bytes < vram, "each GPU holds its sixteenth of the fp32 base"
    assert sharded.ram_bytes >= 16 * 4 * big["parameters"], "every process loads the whole base into host memory"
    small = plan_training(TrainConfig(), 200, 200 * 400, LLAMA_1B, longest=500, device="cuda", free_ram=ram, free_vram=24 * GB, gpus=8)
    assert small.processes == 1 and small.path == "cuda-qlora", "a base that fits one GPU stays on one"
    short = plan_training(TrainConfig(), 200, 200 * 400, big, longest=500, device="cuda", free_ram=256 * GB, free_vram=vram, gpus=16)
    assert not short.fits_ram and short.processes == 1 and short.quantization == "4bit", \
        "when sharding does not fit either (host memory), the refusal is the single-GPU one"
