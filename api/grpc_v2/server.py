"""The gRPC server's life: started in the gateway's lifespan on uvicorn's event loop, stopped first
on shutdown (in-flight calls get the grace period).

Several uvicorn workers each start one on the same port: with ``grpc.so_reuseport`` the kernel
spreads connections over them, as it does for the HTTP port. With one worker it is off, so a
second gateway on a taken port fails to start instead of silently sharing it.
"""

from __future__ import annotations

import logging

import grpc

from ..state import Gateway
from .servicer import InferenceServicer

log = logging.getLogger("api.grpc")


def options(gateway: Gateway) -> list[tuple[str, int]]:
    settings = gateway.settings
    return [
        ("grpc.so_reuseport", int(settings.workers > 1)),
        ("grpc.max_receive_message_length", settings.max_body_bytes),  # RESOURCE_EXHAUSTED beyond
        ("grpc.max_send_message_length", -1),
        ("grpc.max_concurrent_streams", settings.max_connections),
    ]


def build(gateway: Gateway, address: str) -> tuple[grpc.aio.Server, int]:
    """A server for ``gateway`` bound to ``address`` (not started) and the port it got."""
    server = grpc.aio.server(options=options(gateway))
    server.add_generic_rpc_handlers((InferenceServicer(gateway).generic_handler(),))
    port = server.add_insecure_port(address)
    return server, port


async def start(gateway: Gateway) -> grpc.aio.Server | None:
    """Serve gRPC on ``NEXPO_HOST:NEXPO_GRPC_PORT`` (None when the port is 0)."""
    settings = gateway.settings
    if settings.grpc_port == 0:
        return None
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    try:
        server, _ = build(gateway, f"{host}:{settings.grpc_port}")
    except RuntimeError as exc:  # grpc's "Failed to bind": the port is taken or not allowed
        raise RuntimeError(f"cannot serve gRPC on {host}:{settings.grpc_port}: {exc}") from None
    await server.start()
    log.info("gRPC (Open Inference Protocol v2) on %s:%d", host, settings.grpc_port)
    return server


async def stop(server: grpc.aio.Server | None, grace_s: float) -> None:
    if server is not None:
        await server.stop(grace_s)
