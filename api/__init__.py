"""The nexpo gateway: a FastAPI application serving model inference and processing over nexpo.

Installed as ``nexpo.api`` (the repository keeps it in ``api/``; pyproject.toml maps it). Run it
with ``nexpo serve`` or ``python -m nexpo.api``; build it in code with ``nexpo.api.main.create_app``.
Importing ``nexpo.api`` alone stays cheap (the CLI imports it lazily).
"""

if __name__ != "nexpo.api":  # e.g. `import api` with the repository root on sys.path
    raise ImportError(f"the gateway is the package nexpo.api; import that, not {__name__!r}")
