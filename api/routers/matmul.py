"""``/v1/matmul``: C = A @ B through ``nexpo.kernels.matmul``, as JSON or as ``.npy`` bodies.

``application/x-npy`` request: the body is A's ``.npy`` bytes immediately followed by B's; the
response is C's ``.npy``. Headers are parsed and sized before any array is built, so a header that
lies about its shape gets a 400/422 rather than a huge allocation.
"""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from ..deps import GatewayDep
from ..problems import V1_ERRORS, ProblemError, problem_responses

router = APIRouter(prefix="/v1/matmul", tags=["processing"], responses=V1_ERRORS)

NPY = "application/x-npy"
INLINE_FLOPS = 200_000  # smaller products run on the event loop: cheaper than a thread hop

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Matrix = Annotated[list[Annotated[list[FiniteFloat], Field(min_length=1)]], Field(min_length=1)]


class MatmulRequest(BaseModel):
    a: Matrix = Field(description="m × k matrix, as a list of rows", examples=[[[1.0, 2.0], [3.0, 4.0]]])
    b: Matrix = Field(description="k × n matrix, as a list of rows", examples=[[[5.0], [6.0]]])
    dtype: Literal["float32", "float64"] = "float64"


class MatmulResponse(BaseModel):
    shape: list[int] = Field(description="[m, n]")
    dtype: Literal["float32", "float64"]
    result: list[list[float]]


def _matrix(rows: list[list[float]], dtype: type[np.floating[Any]], name: str) -> np.ndarray:
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ProblemError(422, f"{name} is ragged: row {i} has {len(row)} values, row 0 has {width}")
    with np.errstate(over="ignore"):
        array = np.array(rows, dtype=dtype)
    if not np.isfinite(array).all():
        raise ProblemError(422, f"{name} has values that overflow {np.dtype(dtype).name}")
    return array


def _read_npy(buffer: bytes, offset: int, name: str, max_elements: int) -> tuple[np.ndarray, int]:
    stream = io.BytesIO(buffer)
    stream.seek(offset)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, EOFError, OSError) as exc:
        raise ProblemError(400, f"{name}: not a readable .npy array ({exc})") from None
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):
        raise ProblemError(422, f"{name}: dtype must be float32 or float64, got {dtype}")
    if len(shape) != 2:
        raise ProblemError(422, f"{name}: must be 2-D, got shape {shape}")
    count = int(shape[0]) * int(shape[1])
    if count > max_elements:
        raise ProblemError(422, f"{name}: {count} elements exceed the limit of {max_elements}")
    start = stream.tell()
    end = start + count * dtype.itemsize
    if end > len(buffer):
        raise ProblemError(400, f"{name}: header promises {count} values but the body is too short")
    array = np.frombuffer(buffer, dtype=dtype, count=count, offset=start)
    array = array.reshape(shape, order="F" if fortran else "C")
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array, end


def _check_product(a: np.ndarray, b: np.ndarray, max_elements: int) -> None:
    if a.dtype != b.dtype:
        raise ProblemError(422, f"a and b must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.shape[1] != b.shape[0]:
        raise ProblemError(
            422,
            f"shapes {a.shape} and {b.shape} do not chain: "
            f"a has {a.shape[1]} columns, b has {b.shape[0]} rows",
        )
    if a.shape[0] * b.shape[1] > max_elements:
        raise ProblemError(
            422, f"the result would have {a.shape[0] * b.shape[1]} elements; the limit is {max_elements}"
        )


async def _multiply(gateway: GatewayDep, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from nexpo.kernels import matmul

    if a.shape[0] * a.shape[1] * b.shape[1] <= INLINE_FLOPS:
        return matmul(a, b)
    return await gateway.run_cpu(matmul, a, b)


@router.post(
    "",
    summary="Matrix product C = A @ B (JSON or .npy in and out)",
    description=__doc__,
    response_model=MatmulResponse,
    responses={
        200: {"content": {NPY: {"schema": {"type": "string", "format": "binary"}}}},
        **problem_responses(400, 415),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/MatmulRequest"}},
                NPY: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def matmul_endpoint(request: Request, gateway: GatewayDep) -> Response:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = await request.body()
    limit = gateway.settings.max_matmul_elements
    if content_type == NPY:
        a, offset = _read_npy(body, 0, "a", limit)
        b, offset = _read_npy(body, offset, "b", limit)
        if offset != len(body):
            raise ProblemError(400, f"{len(body) - offset} unexpected bytes after the second array")
        _check_product(a, b, limit)
        c = await _multiply(gateway, a, b)
        out = io.BytesIO()
        np.lib.format.write_array(out, c, allow_pickle=False)
        return Response(out.getvalue(), media_type=NPY)
    if content_type not in ("application/json", ""):
        raise ProblemError(415, f"send application/json or {NPY}, not {content_type!r}")
    try:
        parsed = MatmulRequest.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False, include_url=False)) from None
    dtype = np.float32 if parsed.dtype == "float32" else np.float64
    a, b = _matrix(parsed.a, dtype, "a"), _matrix(parsed.b, dtype, "b")
    for name, m in (("a", a), ("b", b)):
        if m.size > limit:
            raise ProblemError(422, f"{name}: {m.size} elements exceed the limit of {limit}")
    _check_product(a, b, limit)
    c = await _multiply(gateway, a, b)
    if not np.isfinite(c).all():
        raise ProblemError(
            422, f"the product overflows {parsed.dtype}; JSON cannot carry infinities (use {NPY})"
        )
    payload = {"shape": list(c.shape), "dtype": parsed.dtype, "result": c}
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")
