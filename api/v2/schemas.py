"""OpenAPI shapes of the v2 protocol (documentation and response validation only: request bodies
are read raw, counted and decoded by ``codec.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ERROR_MEDIA = "application/json"


class ErrorBody(BaseModel):
    error: str


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """The protocol's infer request; with the binary extension, raw tensor bytes follow this JSON
    (``Inference-Header-Content-Length`` gives its length)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


class StatisticDuration(BaseModel):
    count: int
    ns: int


class InferStatistics(BaseModel):
    success: StatisticDuration
    fail: StatisticDuration
    queue: StatisticDuration
    compute_input: StatisticDuration
    compute_infer: StatisticDuration
    compute_output: StatisticDuration
    cache_hit: StatisticDuration
    cache_miss: StatisticDuration


class BatchStatistics(BaseModel):
    batch_size: int
    compute_input: StatisticDuration
    compute_infer: StatisticDuration
    compute_output: StatisticDuration


class ModelStatistics(BaseModel):
    name: str
    version: str
    last_inference: int = Field(description="milliseconds since the epoch (0: never)")
    inference_count: int = Field(description="inferences performed (batch rows)")
    execution_count: int = Field(description="model executions (merged batches)")
    inference_stats: InferStatistics
    batch_stats: list[BatchStatistics]


class InferenceStatistics(BaseModel):
    model_stats: list[ModelStatistics]


class RepositoryIndexRequest(BaseModel):
    ready: bool = False


class RepositoryModel(BaseModel):
    name: str
    version: str | None = None
    state: str
    reason: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for the protocol's ``{"error": ...}`` answers."""
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    return {code: {"description": "error", "content": {ERROR_MEDIA: {"schema": ref}}} for code in codes}


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": ref}}}}


BODY_MODELS: list[type[BaseModel]] = [ErrorBody, InferenceRequest, RepositoryIndexRequest]
# what every authenticated /v2 call may answer
V2_ERRORS = errors(400, 401, 413, 422, 429, 504)
