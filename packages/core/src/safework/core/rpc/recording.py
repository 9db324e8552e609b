"""Record every request message a server receives, as the bytes that arrived (after TLS, before parsing).

A privacy audit aid: the CredID TTP must never receive a user's prompt, and the only way to show it is to
keep everything it was sent during a full generate-and-attribute cycle and search it. Each record is the
method name and the raw message bytes, length-prefixed, appended to one file.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc


class RequestRecorder(grpc.ServerInterceptor):
    """Server interceptor: append ``(method, raw request bytes)`` for every unary or streamed request."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600)

    def _record(self, method: str, data: bytes) -> None:
        name = method.encode("utf-8")
        with self._lock, self.path.open("ab") as out:
            out.write(struct.pack(">II", len(name), len(data)) + name + data)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        parse = handler.request_deserializer or (lambda raw: raw)

        def recording(raw: bytes) -> Any:
            self._record(method, raw)
            return parse(raw)

        return handler._replace(request_deserializer=recording)


def read_records(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """The ``(method, bytes)`` records of a file written by :class:`RequestRecorder`."""
    data = Path(path).read_bytes()
    offset = 0
    while offset < len(data):
        name_len, body_len = struct.unpack_from(">II", data, offset)
        offset += 8
        name = data[offset : offset + name_len].decode("utf-8")
        offset += name_len
        yield name, data[offset : offset + body_len]
        offset += body_len
