"""Training: dataset building, the LoRA trainer subprocess, evaluation, export and deploy."""
