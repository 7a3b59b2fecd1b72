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
