"""Training: data preparation and batches, the run folder, the trainer, validation, schedule,
distributed helpers and checkpoint averaging. May import s2s.inference and s2s.model."""
