"""The peer of the gateway load benchmark: a bare FastAPI app, no middleware, same uvicorn setup."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}
