"""Training and evaluation of staging models: data loading, subject-wise splits, the training loop and
metrics. Evaluation always runs nights through the streaming model epoch by epoch, exactly as live."""
