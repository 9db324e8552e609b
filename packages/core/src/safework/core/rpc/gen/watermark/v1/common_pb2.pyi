from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RequestSignature(_message.Message):
    __slots__ = ("signer_id", "key_id", "nonce", "timestamp_ms", "signature")
    SIGNER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signer_id: str
    key_id: str
    nonce: bytes
    timestamp_ms: int
    signature: bytes
    def __init__(self, signer_id: _Optional[str] = ..., key_id: _Optional[str] = ..., nonce: _Optional[bytes] = ..., timestamp_ms: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...
