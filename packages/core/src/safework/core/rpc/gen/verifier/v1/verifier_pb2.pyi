from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResultCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_CODE_UNSPECIFIED: _ClassVar[ResultCode]
    RESULT_CODE_OK: _ClassVar[ResultCode]
    RESULT_CODE_VERIFIER_NOT_FOUND: _ClassVar[ResultCode]
    RESULT_CODE_NO_VERIFIER: _ClassVar[ResultCode]
    RESULT_CODE_INVALID_ITEM: _ClassVar[ResultCode]
    RESULT_CODE_VERIFIER_FAILED: _ClassVar[ResultCode]
    RESULT_CODE_DEADLINE_EXCEEDED: _ClassVar[ResultCode]
    RESULT_CODE_UNAVAILABLE: _ClassVar[ResultCode]
RESULT_CODE_UNSPECIFIED: ResultCode
RESULT_CODE_OK: ResultCode
RESULT_CODE_VERIFIER_NOT_FOUND: ResultCode
RESULT_CODE_NO_VERIFIER: ResultCode
RESULT_CODE_INVALID_ITEM: ResultCode
RESULT_CODE_VERIFIER_FAILED: ResultCode
RESULT_CODE_DEADLINE_EXCEEDED: ResultCode
RESULT_CODE_UNAVAILABLE: ResultCode

class ScoreItem(_message.Message):
    __slots__ = ("item_id", "prompt", "response", "reference", "metadata", "task_label")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TASK_LABEL_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    prompt: str
    response: str
    reference: str
    metadata: _containers.ScalarMap[str, str]
    task_label: str
    def __init__(self, item_id: _Optional[str] = ..., prompt: _Optional[str] = ..., response: _Optional[str] = ..., reference: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., task_label: _Optional[str] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("items", "verifiers", "request_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    VERIFIERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoreItem]
    verifiers: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[ScoreItem, _Mapping]]] = ..., verifiers: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class ResultStatus(_message.Message):
    __slots__ = ("code", "message", "retryable")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    code: ResultCode
    message: str
    retryable: bool
    def __init__(self, code: _Optional[_Union[ResultCode, str]] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class VerifierResult(_message.Message):
    __slots__ = ("verifier", "principle", "label", "score", "label_probabilities", "categories", "raw_json", "status")
    class LabelProbabilitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERIFIER_FIELD_NUMBER: _ClassVar[int]
    PRINCIPLE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LABEL_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    RAW_JSON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    verifier: str
    principle: str
    label: str
    score: float
    label_probabilities: _containers.ScalarMap[str, float]
    categories: _containers.RepeatedScalarFieldContainer[str]
    raw_json: str
    status: ResultStatus
    def __init__(self, verifier: _Optional[str] = ..., principle: _Optional[str] = ..., label: _Optional[str] = ..., score: _Optional[float] = ..., label_probabilities: _Optional[_Mapping[str, float]] = ..., categories: _Optional[_Iterable[str]] = ..., raw_json: _Optional[str] = ..., status: _Optional[_Union[ResultStatus, _Mapping]] = ...) -> None: ...

class ItemResult(_message.Message):
    __slots__ = ("item_id", "index", "results", "status", "reward")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    index: int
    results: _containers.RepeatedCompositeFieldContainer[VerifierResult]
    status: ResultStatus
    reward: RewardBreakdown
    def __init__(self, item_id: _Optional[str] = ..., index: _Optional[int] = ..., results: _Optional[_Iterable[_Union[VerifierResult, _Mapping]]] = ..., status: _Optional[_Union[ResultStatus, _Mapping]] = ..., reward: _Optional[_Union[RewardBreakdown, _Mapping]] = ...) -> None: ...

class RewardComponent(_message.Message):
    __slots__ = ("verifier", "weight", "score", "missing")
    VERIFIER_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    verifier: str
    weight: float
    score: float
    missing: bool
    def __init__(self, verifier: _Optional[str] = ..., weight: _Optional[float] = ..., score: _Optional[float] = ..., missing: _Optional[bool] = ...) -> None: ...

class RewardBreakdown(_message.Message):
    __slots__ = ("status", "total", "task_label", "known_label", "format_verifier", "format_weight", "format_score", "components", "recipe_source")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    TASK_LABEL_FIELD_NUMBER: _ClassVar[int]
    KNOWN_LABEL_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERIFIER_FIELD_NUMBER: _ClassVar[int]
    FORMAT_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_SCORE_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    RECIPE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    status: ResultStatus
    total: float
    task_label: str
    known_label: bool
    format_verifier: str
    format_weight: float
    format_score: float
    components: _containers.RepeatedCompositeFieldContainer[RewardComponent]
    recipe_source: str
    def __init__(self, status: _Optional[_Union[ResultStatus, _Mapping]] = ..., total: _Optional[float] = ..., task_label: _Optional[str] = ..., known_label: _Optional[bool] = ..., format_verifier: _Optional[str] = ..., format_weight: _Optional[float] = ..., format_score: _Optional[float] = ..., components: _Optional[_Iterable[_Union[RewardComponent, _Mapping]]] = ..., recipe_source: _Optional[str] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("items", "request_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ItemResult]
    request_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[ItemResult, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class TraceOpen(_message.Message):
    __slots__ = ("trace_id", "prompt", "verifiers", "principle_weights", "metadata", "task_label", "reference")
    class PrincipleWeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    VERIFIERS_FIELD_NUMBER: _ClassVar[int]
    PRINCIPLE_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TASK_LABEL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    prompt: str
    verifiers: _containers.RepeatedScalarFieldContainer[str]
    principle_weights: _containers.ScalarMap[str, float]
    metadata: _containers.ScalarMap[str, str]
    task_label: str
    reference: str
    def __init__(self, trace_id: _Optional[str] = ..., prompt: _Optional[str] = ..., verifiers: _Optional[_Iterable[str]] = ..., principle_weights: _Optional[_Mapping[str, float]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., task_label: _Optional[str] = ..., reference: _Optional[str] = ...) -> None: ...

class StepAppend(_message.Message):
    __slots__ = ("trace_id", "step_index", "text", "is_final")
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IS_FINAL_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    step_index: int
    text: str
    is_final: bool
    def __init__(self, trace_id: _Optional[str] = ..., step_index: _Optional[int] = ..., text: _Optional[str] = ..., is_final: _Optional[bool] = ...) -> None: ...

class TraceClose(_message.Message):
    __slots__ = ("trace_id",)
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    def __init__(self, trace_id: _Optional[str] = ...) -> None: ...

class ScoreStepsRequest(_message.Message):
    __slots__ = ("open", "step", "close")
    OPEN_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    open: TraceOpen
    step: StepAppend
    close: TraceClose
    def __init__(self, open: _Optional[_Union[TraceOpen, _Mapping]] = ..., step: _Optional[_Union[StepAppend, _Mapping]] = ..., close: _Optional[_Union[TraceClose, _Mapping]] = ...) -> None: ...

class ScoreStepsResponse(_message.Message):
    __slots__ = ("trace_id", "step_index", "results", "value", "status")
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    step_index: int
    results: _containers.RepeatedCompositeFieldContainer[VerifierResult]
    value: float
    status: ResultStatus
    def __init__(self, trace_id: _Optional[str] = ..., step_index: _Optional[int] = ..., results: _Optional[_Iterable[_Union[VerifierResult, _Mapping]]] = ..., value: _Optional[float] = ..., status: _Optional[_Union[ResultStatus, _Mapping]] = ...) -> None: ...

class ListVerifiersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifierInfo(_message.Message):
    __slots__ = ("name", "principle", "labels", "label_scores", "supports_steps", "ready", "source", "description", "requires_reference")
    class LabelScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRINCIPLE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LABEL_SCORES_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_STEPS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    principle: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    label_scores: _containers.ScalarMap[str, float]
    supports_steps: bool
    ready: bool
    source: str
    description: str
    requires_reference: bool
    def __init__(self, name: _Optional[str] = ..., principle: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., label_scores: _Optional[_Mapping[str, float]] = ..., supports_steps: _Optional[bool] = ..., ready: _Optional[bool] = ..., source: _Optional[str] = ..., description: _Optional[str] = ..., requires_reference: _Optional[bool] = ...) -> None: ...

class ServerLimits(_message.Message):
    __slots__ = ("max_items_per_request", "max_message_bytes", "max_batch_size", "max_wait_ms")
    MAX_ITEMS_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    max_items_per_request: int
    max_message_bytes: int
    max_batch_size: int
    max_wait_ms: float
    def __init__(self, max_items_per_request: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., max_wait_ms: _Optional[float] = ...) -> None: ...

class ListVerifiersResponse(_message.Message):
    __slots__ = ("verifiers", "limits")
    VERIFIERS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    verifiers: _containers.RepeatedCompositeFieldContainer[VerifierInfo]
    limits: ServerLimits
    def __init__(self, verifiers: _Optional[_Iterable[_Union[VerifierInfo, _Mapping]]] = ..., limits: _Optional[_Union[ServerLimits, _Mapping]] = ...) -> None: ...
