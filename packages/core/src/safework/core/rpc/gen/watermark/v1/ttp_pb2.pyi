import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from safework.core.rpc.gen.watermark.v1 import common_pb2 as _common_pb2
from safework.core.rpc.gen.watermark.v1 import vendor_pb2 as _vendor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Correction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CORRECTION_UNSPECIFIED: _ClassVar[Correction]
    CORRECTION_BONFERRONI: _ClassVar[Correction]
    CORRECTION_HOLM: _ClassVar[Correction]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_ATTRIBUTED: _ClassVar[Decision]
    DECISION_NONE: _ClassVar[Decision]
    DECISION_AMBIGUOUS: _ClassVar[Decision]

class AuditKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_KIND_UNSPECIFIED: _ClassVar[AuditKind]
    AUDIT_KIND_VENDOR_REGISTERED: _ClassVar[AuditKind]
    AUDIT_KIND_SEED_ISSUED: _ClassVar[AuditKind]
    AUDIT_KIND_ATTRIBUTION: _ClassVar[AuditKind]
CORRECTION_UNSPECIFIED: Correction
CORRECTION_BONFERRONI: Correction
CORRECTION_HOLM: Correction
DECISION_UNSPECIFIED: Decision
DECISION_ATTRIBUTED: Decision
DECISION_NONE: Decision
DECISION_AMBIGUOUS: Decision
AUDIT_KIND_UNSPECIFIED: AuditKind
AUDIT_KIND_VENDOR_REGISTERED: AuditKind
AUDIT_KIND_SEED_ISSUED: AuditKind
AUDIT_KIND_ATTRIBUTION: AuditKind

class VendorKey(_message.Message):
    __slots__ = ("key_id", "public_key", "algorithm")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    public_key: bytes
    algorithm: str
    def __init__(self, key_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., algorithm: _Optional[str] = ...) -> None: ...

class RegisterVendorRequest(_message.Message):
    __slots__ = ("vendor_id", "display_name", "keys", "model_ids", "scheme", "scheme_version", "endpoint", "signature", "cert_fingerprint")
    VENDOR_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    SCHEME_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CERT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    vendor_id: str
    display_name: str
    keys: _containers.RepeatedCompositeFieldContainer[VendorKey]
    model_ids: _containers.RepeatedScalarFieldContainer[str]
    scheme: str
    scheme_version: str
    endpoint: str
    signature: _common_pb2.RequestSignature
    cert_fingerprint: str
    def __init__(self, vendor_id: _Optional[str] = ..., display_name: _Optional[str] = ..., keys: _Optional[_Iterable[_Union[VendorKey, _Mapping]]] = ..., model_ids: _Optional[_Iterable[str]] = ..., scheme: _Optional[str] = ..., scheme_version: _Optional[str] = ..., endpoint: _Optional[str] = ..., signature: _Optional[_Union[_common_pb2.RequestSignature, _Mapping]] = ..., cert_fingerprint: _Optional[str] = ...) -> None: ...

class Vendor(_message.Message):
    __slots__ = ("vendor_id", "display_name", "keys", "model_ids", "scheme", "scheme_version", "endpoint", "registered_at")
    VENDOR_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    SCHEME_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    vendor_id: str
    display_name: str
    keys: _containers.RepeatedCompositeFieldContainer[VendorKey]
    model_ids: _containers.RepeatedScalarFieldContainer[str]
    scheme: str
    scheme_version: str
    endpoint: str
    registered_at: _timestamp_pb2.Timestamp
    def __init__(self, vendor_id: _Optional[str] = ..., display_name: _Optional[str] = ..., keys: _Optional[_Iterable[_Union[VendorKey, _Mapping]]] = ..., model_ids: _Optional[_Iterable[str]] = ..., scheme: _Optional[str] = ..., scheme_version: _Optional[str] = ..., endpoint: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterVendorResponse(_message.Message):
    __slots__ = ("vendor", "ttp_public_key", "audit_sequence")
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    TTP_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    AUDIT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    vendor: Vendor
    ttp_public_key: bytes
    audit_sequence: int
    def __init__(self, vendor: _Optional[_Union[Vendor, _Mapping]] = ..., ttp_public_key: _Optional[bytes] = ..., audit_sequence: _Optional[int] = ...) -> None: ...

class IdentityMessage(_message.Message):
    __slots__ = ("vendor_id", "model_id", "model_version", "timestamp", "extra_info", "time_bucket")
    VENDOR_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EXTRA_INFO_FIELD_NUMBER: _ClassVar[int]
    TIME_BUCKET_FIELD_NUMBER: _ClassVar[int]
    vendor_id: str
    model_id: str
    model_version: str
    timestamp: _timestamp_pb2.Timestamp
    extra_info: str
    time_bucket: int
    def __init__(self, vendor_id: _Optional[str] = ..., model_id: _Optional[str] = ..., model_version: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., extra_info: _Optional[str] = ..., time_bucket: _Optional[int] = ...) -> None: ...

class IssueSeedRequest(_message.Message):
    __slots__ = ("vendor_id", "identity", "nonce", "signature")
    VENDOR_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    vendor_id: str
    identity: IdentityMessage
    nonce: bytes
    signature: _common_pb2.RequestSignature
    def __init__(self, vendor_id: _Optional[str] = ..., identity: _Optional[_Union[IdentityMessage, _Mapping]] = ..., nonce: _Optional[bytes] = ..., signature: _Optional[_Union[_common_pb2.RequestSignature, _Mapping]] = ...) -> None: ...

class SeedGrant(_message.Message):
    __slots__ = ("seed_id", "seed", "payload", "payload_bits", "identity", "valid_from", "valid_to", "ttp_signature", "audit_sequence")
    SEED_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BITS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    TTP_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    AUDIT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    seed_id: str
    seed: bytes
    payload: bytes
    payload_bits: int
    identity: IdentityMessage
    valid_from: _timestamp_pb2.Timestamp
    valid_to: _timestamp_pb2.Timestamp
    ttp_signature: bytes
    audit_sequence: int
    def __init__(self, seed_id: _Optional[str] = ..., seed: _Optional[bytes] = ..., payload: _Optional[bytes] = ..., payload_bits: _Optional[int] = ..., identity: _Optional[_Union[IdentityMessage, _Mapping]] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ttp_signature: _Optional[bytes] = ..., audit_sequence: _Optional[int] = ...) -> None: ...

class AttributeRequest(_message.Message):
    __slots__ = ("text", "alpha", "vendor_ids", "correction", "request_id", "signature")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    VENDOR_IDS_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    text: str
    alpha: float
    vendor_ids: _containers.RepeatedScalarFieldContainer[str]
    correction: Correction
    request_id: str
    signature: _common_pb2.RequestSignature
    def __init__(self, text: _Optional[str] = ..., alpha: _Optional[float] = ..., vendor_ids: _Optional[_Iterable[str]] = ..., correction: _Optional[_Union[Correction, str]] = ..., request_id: _Optional[str] = ..., signature: _Optional[_Union[_common_pb2.RequestSignature, _Mapping]] = ...) -> None: ...

class VendorFinding(_message.Message):
    __slots__ = ("vendor_id", "report", "signature_valid", "corrected_p_value", "error")
    VENDOR_ID_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_VALID_FIELD_NUMBER: _ClassVar[int]
    CORRECTED_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    vendor_id: str
    report: _vendor_pb2.SignedExtractionReport
    signature_valid: bool
    corrected_p_value: float
    error: str
    def __init__(self, vendor_id: _Optional[str] = ..., report: _Optional[_Union[_vendor_pb2.SignedExtractionReport, _Mapping]] = ..., signature_valid: _Optional[bool] = ..., corrected_p_value: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class AttributeResponse(_message.Message):
    __slots__ = ("decision", "vendor_id", "seed_id", "identity", "p_value", "alpha", "correction", "findings", "request_id", "audit_sequence", "ttp_signature", "partial", "missing_vendor_ids")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    VENDOR_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    CORRECTION_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TTP_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    MISSING_VENDOR_IDS_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    vendor_id: str
    seed_id: str
    identity: IdentityMessage
    p_value: float
    alpha: float
    correction: Correction
    findings: _containers.RepeatedCompositeFieldContainer[VendorFinding]
    request_id: str
    audit_sequence: int
    ttp_signature: bytes
    partial: bool
    missing_vendor_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., vendor_id: _Optional[str] = ..., seed_id: _Optional[str] = ..., identity: _Optional[_Union[IdentityMessage, _Mapping]] = ..., p_value: _Optional[float] = ..., alpha: _Optional[float] = ..., correction: _Optional[_Union[Correction, str]] = ..., findings: _Optional[_Iterable[_Union[VendorFinding, _Mapping]]] = ..., request_id: _Optional[str] = ..., audit_sequence: _Optional[int] = ..., ttp_signature: _Optional[bytes] = ..., partial: _Optional[bool] = ..., missing_vendor_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("sequence", "recorded_at", "kind", "actor", "body", "prev_hash", "entry_hash", "recorded_at_unix", "kind_name")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    ENTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    KIND_NAME_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    recorded_at: _timestamp_pb2.Timestamp
    kind: AuditKind
    actor: str
    body: bytes
    prev_hash: bytes
    entry_hash: bytes
    recorded_at_unix: float
    kind_name: str
    def __init__(self, sequence: _Optional[int] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[AuditKind, str]] = ..., actor: _Optional[str] = ..., body: _Optional[bytes] = ..., prev_hash: _Optional[bytes] = ..., entry_hash: _Optional[bytes] = ..., recorded_at_unix: _Optional[float] = ..., kind_name: _Optional[str] = ...) -> None: ...

class GetAuditLogRequest(_message.Message):
    __slots__ = ("from_sequence", "limit")
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    from_sequence: int
    limit: int
    def __init__(self, from_sequence: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class GetAuditLogResponse(_message.Message):
    __slots__ = ("entries", "head_sequence", "head_hash", "head_signature")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    HEAD_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    head_sequence: int
    head_hash: bytes
    head_signature: bytes
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., head_sequence: _Optional[int] = ..., head_hash: _Optional[bytes] = ..., head_signature: _Optional[bytes] = ...) -> None: ...
