"""The nexpo gateway: a FastAPI application serving model inference and processing over nexpo.

Run it with ``nexpo serve`` or ``python -m api``; build it in code with ``api.main.create_app``.
Importing ``api`` alone stays cheap (the CLI imports it lazily).
"""
