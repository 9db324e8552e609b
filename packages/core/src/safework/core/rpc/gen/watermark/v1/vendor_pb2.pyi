import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from safework.core.rpc.gen.watermark.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SamplingParams(_message.Message):
    __slots__ = ("max_new_tokens", "temperature", "top_p", "top_k", "sampling_seed")
    MAX_NEW_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_SEED_FIELD_NUMBER: _ClassVar[int]
    max_new_tokens: int
    temperature: float
    top_p: float
    top_k: int
    sampling_seed: int
    def __init__(self, max_new_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., top_k: _Optional[int] = ..., sampling_seed: _Optional[int] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("prompt", "seed_id", "model_id", "sampling", "chat")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    CHAT_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    seed_id: str
    model_id: str
    sampling: SamplingParams
    chat: bool
    def __init__(self, prompt: _Optional[str] = ..., seed_id: _Optional[str] = ..., model_id: _Optional[str] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., chat: _Optional[bool] = ...) -> None: ...

class GenerateBatchRequest(_message.Message):
    __slots__ = ("prompts", "seed_id", "model_id", "sampling", "chat")
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    SEED_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    CHAT_FIELD_NUMBER: _ClassVar[int]
    prompts: _containers.RepeatedScalarFieldContainer[str]
    seed_id: str
    model_id: str
    sampling: SamplingParams
    chat: bool
    def __init__(self, prompts: _Optional[_Iterable[str]] = ..., seed_id: _Optional[str] = ..., model_id: _Optional[str] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., chat: _Optional[bool] = ...) -> None: ...

class GenerateBatchResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[GenerateResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[GenerateResponse, _Mapping]]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("text", "seed_id", "model_id", "generated_tokens", "watermarked_tokens", "scheme", "scheme_version")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SEED_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    WATERMARKED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    SCHEME_VERSION_FIELD_NUMBER: _ClassVar[int]
    text: str
    seed_id: str
    model_id: str
    generated_tokens: int
    watermarked_tokens: int
    scheme: str
    scheme_version: str
    def __init__(self, text: _Optional[str] = ..., seed_id: _Optional[str] = ..., model_id: _Optional[str] = ..., generated_tokens: _Optional[int] = ..., watermarked_tokens: _Optional[int] = ..., scheme: _Optional[str] = ..., scheme_version: _Optional[str] = ...) -> None: ...

class ExtractRequest(_message.Message):
    __slots__ = ("request_id", "text", "candidate_seed_ids", "nonce", "requested_at", "signature")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_SEED_IDS_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    text: str
    candidate_seed_ids: _containers.RepeatedScalarFieldContainer[str]
    nonce: bytes
    requested_at: _timestamp_pb2.Timestamp
    signature: _common_pb2.RequestSignature
    def __init__(self, request_id: _Optional[str] = ..., text: _Optional[str] = ..., candidate_seed_ids: _Optional[_Iterable[str]] = ..., nonce: _Optional[bytes] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., signature: _Optional[_Union[_common_pb2.RequestSignature, _Mapping]] = ...) -> None: ...

class ExtractionReport(_message.Message):
    __slots__ = ("request_id", "nonce", "text_sha256", "vendor_id", "best_seed_id", "payload", "payload_bits", "p_value", "z_score", "bit_confidence", "scored_tokens", "green_hits", "runner_up_margin", "candidates_tested", "scheme", "scheme_version", "extracted_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    TEXT_SHA256_FIELD_NUMBER: _ClassVar[int]
    VENDOR_ID_FIELD_NUMBER: _ClassVar[int]
    BEST_SEED_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BITS_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    Z_SCORE_FIELD_NUMBER: _ClassVar[int]
    BIT_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SCORED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    GREEN_HITS_FIELD_NUMBER: _ClassVar[int]
    RUNNER_UP_MARGIN_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_TESTED_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    SCHEME_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXTRACTED_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    nonce: bytes
    text_sha256: bytes
    vendor_id: str
    best_seed_id: str
    payload: bytes
    payload_bits: int
    p_value: float
    z_score: float
    bit_confidence: _containers.RepeatedScalarFieldContainer[float]
    scored_tokens: int
    green_hits: int
    runner_up_margin: float
    candidates_tested: int
    scheme: str
    scheme_version: str
    extracted_at: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., nonce: _Optional[bytes] = ..., text_sha256: _Optional[bytes] = ..., vendor_id: _Optional[str] = ..., best_seed_id: _Optional[str] = ..., payload: _Optional[bytes] = ..., payload_bits: _Optional[int] = ..., p_value: _Optional[float] = ..., z_score: _Optional[float] = ..., bit_confidence: _Optional[_Iterable[float]] = ..., scored_tokens: _Optional[int] = ..., green_hits: _Optional[int] = ..., runner_up_margin: _Optional[float] = ..., candidates_tested: _Optional[int] = ..., scheme: _Optional[str] = ..., scheme_version: _Optional[str] = ..., extracted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SignedExtractionReport(_message.Message):
    __slots__ = ("report", "signature", "signature_algorithm", "key_id")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    report: bytes
    signature: bytes
    signature_algorithm: str
    key_id: str
    def __init__(self, report: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., signature_algorithm: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...
