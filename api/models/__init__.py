"""Bundled models: ``digits.safetensors`` (built by ``python -m api.models.train_digits``)."""
