"""Learning-rate schedule: linear warm-up, then decay on a validation plateau."""

from __future__ import annotations


class LRSchedule:
    """lr(step) = base * min(1, step / warmup) * scale, where ``scale`` is multiplied by
    ``factor`` after ``patience`` validations without improvement, never below ``min_lr``."""

    def __init__(self, base_lr: float, warmup_steps: int, factor: float, patience: int,
                 min_lr: float):
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.factor = factor
        self.patience = patience
        self.min_lr = min_lr
        self.scale = 1.0
        self.bad_validations = 0

    def lr(self, step: int) -> float:
        """Learning rate for the (1-based) ``step``."""
        warm = min(1.0, step / self.warmup_steps) if self.warmup_steps else 1.0
        return max(self.base_lr * warm * self.scale, min(self.min_lr, self.base_lr))

    def on_validation(self, improved: bool) -> bool:
        """Record a validation result; returns True when the learning rate was decayed."""
        if improved:
            self.bad_validations = 0
            return False
        self.bad_validations += 1
        if self.bad_validations <= self.patience:
            return False
        self.bad_validations = 0
        self.scale *= self.factor
        return True

    def state_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.scale = float(state["scale"])
        self.bad_validations = int(state["bad_validations"])
