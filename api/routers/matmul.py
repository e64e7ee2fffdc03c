"""``/v1/matmul``: C = A @ B through ``nexpo.kernels.matmul``, as JSON or as ``.npy`` bodies.

``application/x-npy`` request: the body is A's ``.npy`` bytes immediately followed by B's; the
response is C's ``.npy``. Headers are parsed and sized before any array is built, so a header that
lies about its shape gets a 400/422 rather than a huge allocation. JSON is for small matrices: at
most NEXPO_MAX_JSON_MATMUL_ELEMENTS per operand and result, JSON numbers only.
"""

from __future__ import annotations

import functools
import io
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ..bodies import JsonLimits, JsonNumber, parse_bounded, read_json_body
from ..deps import GatewayDep
from ..problems import V1_ERRORS, ProblemError, problem_responses

router = APIRouter(prefix="/v1/matmul", tags=["processing"], responses=V1_ERRORS)

NPY = "application/x-npy"

Matrix = Annotated[list[Annotated[list[JsonNumber], Field(min_length=1)]], Field(min_length=1)]


class MatmulRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    except Exception as exc:  # numpy's header parser lets tokenizer and eval errors through, too
        raise ProblemError(400, f"{name}: not a readable .npy array ({exc})") from None
    if dtype.kind != "f" or dtype.itemsize not in (4, 8):
        raise ProblemError(422, f"{name}: dtype must be float32 or float64, got {dtype}")
    if len(shape) != 2:
        raise ProblemError(422, f"{name}: must be 2-D, got shape {shape}")
    # numpy's header reader takes any ints: negative, bool, or past what an array can index.
    if any(type(dim) is not int or not 0 <= dim <= max_elements for dim in shape):
        raise ProblemError(422, f"{name}: shape {shape} must be two integers from 0 to {max_elements}")
    count = shape[0] * shape[1]
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


@functools.lru_cache(maxsize=8)
def _json_limits(limit: int) -> JsonLimits:
    # a and b of `limit` elements each, their rows, and a few values of structure
    most = 4 * limit + 16
    return JsonLimits(most, f"a JSON matmul body holds more than {most} JSON values; send {NPY} for more")


def _json_operands(body: bytes, limit: int) -> tuple[MatmulRequest, np.ndarray, np.ndarray]:
    """a and b of a JSON body, its size in JSON values bounded before it is parsed."""
    parsed = parse_bounded(MatmulRequest, body, _json_limits(limit))
    dtype = np.float32 if parsed.dtype == "float32" else np.float64
    a, b = _matrix(parsed.a, dtype, "a"), _matrix(parsed.b, dtype, "b")
    for name, m in (("a", a), ("b", b)):
        if m.size > limit:
            raise ProblemError(422, f"{name}: {m.size} elements exceed the JSON limit of {limit}; send {NPY}")
    return parsed, a, b


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


async def _multiply(
    gateway: GatewayDep, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    from nexpo.kernels import matmul

    # Bytes of the operands and the result: at the default inline limit a product run inline is at
    # most ~150k multiply-adds (the square case), ~15 µs.
    cost = (a.size + b.size + a.shape[0] * b.shape[1]) * a.itemsize
    return await gateway.run(functools.partial(matmul, out=out), a, b, cost=cost)


def _npy_response_buffer(dtype: np.dtype[Any], shape: tuple[int, int]) -> tuple[memoryview, np.ndarray]:
    """A whole ``.npy`` response and the C-ordered array inside it that the product is written to:
    the result is held once, not once more per copy into a file object and out of it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    )
    start = header.tell()
    buffer = bytearray(start + shape[0] * shape[1] * dtype.itemsize)
    buffer[:start] = header.getvalue()
    array = np.frombuffer(buffer, dtype=dtype, offset=start).reshape(shape)
    return memoryview(buffer), array


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
    limit = gateway.settings.max_matmul_elements
    if content_type == NPY:
        body = await request.body()
        a, offset = _read_npy(body, 0, "a", limit)
        b, offset = _read_npy(body, offset, "b", limit)
        if offset != len(body):
            raise ProblemError(400, f"{len(body) - offset} unexpected bytes after the second array")
        _check_product(a, b, limit)
        npy_body, c = _npy_response_buffer(a.dtype, (a.shape[0], b.shape[1]))
        await _multiply(gateway, a, b, out=c)
        return Response(npy_body, media_type=NPY)
    if content_type not in ("application/json", ""):
        raise ProblemError(415, f"send application/json or {NPY}, not {content_type!r}")
    limit = min(limit, gateway.settings.max_json_matmul_elements)
    # counted as it arrives: a body over budget is answered before it is read to its end
    body = await read_json_body(request, _json_limits(limit))
    parsed, a, b = await gateway.run(_json_operands, body, limit, cost=len(body))
    _check_product(a, b, limit)
    c = await _multiply(gateway, a, b)
    if not np.isfinite(c).all():
        raise ProblemError(
            422, f"the product overflows {parsed.dtype}; JSON cannot carry infinities (use {NPY})"
        )
    payload = {"shape": list(c.shape), "dtype": parsed.dtype, "result": c}
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")
