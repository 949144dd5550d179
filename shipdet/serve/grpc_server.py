"""The Open Inference Protocol over gRPC (KServe's `GRPCInferenceService`, which `tritonclient.grpc` speaks), on
the service's own engine, batcher, limits and keys: a thin adapter that parses its protocol into the parameters
model and calls the same data plane as `/v1` and `/v2`. Started with the HTTP service when `grpc_port` is set."""

from __future__ import annotations

import logging
from typing import Any

import grpc
import numpy as np
from grpc import aio

from shipdet import __version__
from shipdet.errors import ShipdetError
from shipdet.serve.auth import FailedAttempts, check_key
from shipdet.serve.dataplane import TileError, TileResult, detect_tiles
from shipdet.serve.errors import ApiError, classify
from shipdet.serve.params import parse_parameters
from shipdet.serve.protos import grpc_predict_v2_pb2 as pb
from shipdet.serve.state import ServiceState
from shipdet.serve.v2codec import (
    DATATYPES,
    INPUTS,
    PROTOCOL_PARAMETERS,
    bytes_elements,
    detection_tensors,
    output_metadata,
)

log = logging.getLogger(__name__)

# HTTP statuses of the one error table, as gRPC codes.
CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
         404: grpc.StatusCode.NOT_FOUND, 408: grpc.StatusCode.DEADLINE_EXCEEDED,
         413: grpc.StatusCode.RESOURCE_EXHAUSTED, 415: grpc.StatusCode.INVALID_ARGUMENT,
         422: grpc.StatusCode.INVALID_ARGUMENT, 429: grpc.StatusCode.RESOURCE_EXHAUSTED,
         503: grpc.StatusCode.UNAVAILABLE, 504: grpc.StatusCode.DEADLINE_EXCEEDED}


def _parameter(value: pb.InferParameter) -> Any:
    kind = value.WhichOneof("parameter_choice")
    return getattr(value, kind) if kind else None


def request_images(request: pb.ModelInferRequest) -> list[bytes]:
    """The encoded images of input `images` (BYTES): from `raw_input_contents` (4-byte length + bytes per
    element, as tritonclient sends them) or from `contents.bytes_contents`."""
    position = next((i for i, t in enumerate(request.inputs) if t.name == "images"), None)
    if position is None or request.inputs[position].datatype != "BYTES":
        raise ValueError("the request needs one input named 'images' of datatype BYTES")
    tensor = request.inputs[position]
    if request.raw_input_contents:
        if len(request.raw_input_contents) != len(request.inputs):
            raise ValueError("raw_input_contents must hold one entry per input")
        images = bytes_elements(request.raw_input_contents[position])
    else:
        images = list(tensor.contents.bytes_contents)
    if int(np.prod(tensor.shape or [len(images)])) != len(images):
        raise ValueError(f"'images' has shape {list(tensor.shape)} but holds {len(images)} elements")
    return images


SERVICE = "inference.GRPCInferenceService"  # the protocol's path, whatever the package of our generated types
METHODS: dict[str, tuple[Any, Any]] = {"ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse),
           "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse),
           "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse),
           "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse),
           "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse),
           "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse)}


class InferenceServicer:
    def __init__(self, svc: ServiceState, keys: list[str], failed: FailedAttempts) -> None:
        self.svc, self.keys, self.failed = svc, keys, failed

    async def ServerLive(self, request: pb.ServerLiveRequest, context: aio.ServicerContext) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, context: aio.ServicerContext
                          ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.svc.ready and not self.svc.draining)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, context: aio.ServicerContext
                             ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name="shipdet", version=__version__, extensions=[])

    async def ModelReady(self, request: pb.ModelReadyRequest, context: aio.ServicerContext) -> pb.ModelReadyResponse:
        await self._guard(context, request.name)
        return pb.ModelReadyResponse(ready=self.svc.ready and not self.svc.draining)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, context: aio.ServicerContext
                            ) -> pb.ModelMetadataResponse:
        info = (await self._guard(context, request.name)).info
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=info.name, versions=[info.version], platform="onnxruntime_onnx",
            inputs=[tensor(**t) for t in INPUTS], outputs=[tensor(**t) for t in output_metadata(info.task)])

    async def ModelInfer(self, request: pb.ModelInferRequest, context: aio.ServicerContext) -> pb.ModelInferResponse:
        engine = await self._guard(context, request.model_name)
        try:
            self.svc.admit()
            images = request_images(request)
            raw = {k: _parameter(v) for k, v in request.parameters.items() if k not in PROTOCOL_PARAMETERS}
            params = parse_parameters(raw, status=400)  # validated before anything is decoded or batched
            if len(images) > self.svc.settings.max_tiles:
                raise ApiError(413, "too_many_tiles", f"{len(images)} images sent, at most "
                                                      f"{self.svc.settings.max_tiles} per request")
            results = await detect_tiles(self.svc, images, params)
        except (ApiError, ShipdetError) as exc:
            known = classify(exc)
            if known is None:
                raise
            await context.abort(CODES.get(known[0], grpc.StatusCode.INVALID_ARGUMENT), known[2])
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad inference request: {exc}")
        for result in results:  # the protocol fails the whole request for one bad input
            if isinstance(result, TileError):
                await context.abort(CODES.get(result.status, grpc.StatusCode.INVALID_ARGUMENT), result.message)
        tensors = detection_tensors([r for r in results if isinstance(r, TileResult)], engine.info.task)
        wanted = [o.name for o in request.outputs] or list(tensors)
        unknown = sorted(set(wanted) - set(tensors))
        if unknown:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown output(s): {', '.join(unknown)}")
        response = pb.ModelInferResponse(model_name=engine.info.name, model_version=engine.info.version,
                                         id=request.id)
        for name in wanted:
            array = tensors[name]
            response.outputs.add(name=name, datatype=DATATYPES[array.dtype], shape=list(array.shape))
            response.raw_output_contents.append(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"))
                                                .tobytes())
        return response

    async def _guard(self, context: aio.ServicerContext, name: str) -> Any:
        """The API key (metadata `x-api-key` or `authorization: Bearer`), rate-limited per peer, then the
        model: the engine, or the protocol's NOT_FOUND / UNAVAILABLE."""
        if self.keys:
            peer = (context.peer() or "unknown").rsplit(":", 1)[0]  # "ipv4:127.0.0.1:54321": the address, per client
            if self.failed.retry_after(peer) is not None:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many wrong or missing API keys")
            metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
            bearer = metadata.get("authorization", "")
            key = metadata.get("x-api-key") or (bearer[7:].strip() if bearer.lower().startswith("bearer ") else None)
            if not check_key(key, self.keys):
                self.failed.record(peer)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong API key")
        try:
            engine = self.svc.engine_or_503()
        except ApiError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, exc.message)
        if name != engine.info.name:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"model {name!r} is not served (this server serves "
                                                           f"{engine.info.name!r})")
        return engine


async def start_grpc(svc: ServiceState, keys: list[str], failed: FailedAttempts) -> aio.Server:
    """The gRPC server on `host:grpc_port`, in the event loop the HTTP service runs in (one batcher for both)."""
    s = svc.settings
    server = aio.server(options=[("grpc.max_receive_message_length", s.max_body_bytes),
                                 ("grpc.max_send_message_length", 64 * 1024 * 1024)])
    servicer = InferenceServicer(svc, keys, failed)
    handlers = {name: grpc.unary_unary_rpc_method_handler(getattr(servicer, name), request.FromString,
                                                          response.SerializeToString)
                for name, (request, response) in METHODS.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port(f"{s.host}:{s.grpc_port}")
    await server.start()
    svc.grpc_port = port
    log.info("gRPC (Open Inference Protocol) on %s:%d", s.host, port)
    return server
