"""Whether the gateway is ready to serve: one decision for ``/readyz``, ``/v2/health/ready`` and
gRPC ``ServerReady``, so a load balancer and a v2 client never disagree."""

from __future__ import annotations

from .inference.registry import MODELS_DIRECTORY
from .state import Gateway


def _models_problem(gateway: Gateway) -> str | None:
    """Why the /v1 models keep the service unready, if they do. The probes are open: no file names
    here (they are in the log, the authenticated /v1/info and the repository index)."""
    registry = gateway.registry
    failed = [name for name in registry.errors if name != MODELS_DIRECTORY]
    if failed:
        return f"{len(failed)} model file(s) failed to load (see /v1/info or the log)"
    if registry.models or gateway.settings.allow_no_models:
        return None
    why = (
        "the models directory does not exist" if MODELS_DIRECTORY in registry.errors else "no model is loaded"
    )
    return f"{why}; set NEXPO_ALLOW_NO_MODELS=true to serve without models"


def not_ready_reason(gateway: Gateway) -> str | None:
    """None when ready; else why not, in one sentence fit for an open probe."""
    if not gateway.ready:
        return "starting up or draining: models not loaded yet"
    problem = _models_problem(gateway)
    if problem is not None:
        return problem
    repository = gateway.repository
    if repository is None or not repository.ready():
        return "a model in the repository failed to load (see the repository index)"
    try:
        from nexpo import get_num_threads

        get_num_threads()
    except Exception:
        return "the native core does not answer"
    return None
