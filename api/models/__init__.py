"""Bundled models: ``digits.safetensors`` (built by ``python -m nexpo.api.models.train_digits``)."""
