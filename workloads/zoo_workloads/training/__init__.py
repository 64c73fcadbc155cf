"""Training machinery: learning-rate schedules, optimizers, distributed setup, the train/eval loop."""
