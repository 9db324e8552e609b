"""The reward server's bad-input matrix: each malformed request gets the documented status and message.

| input                                   | answer                                                           |
|-----------------------------------------|------------------------------------------------------------------|
| empty batch                             | INVALID_ARGUMENT "has no items"                                  |
| more items than max_items               | INVALID_ARGUMENT naming the limit                                |
| message over max_message_bytes          | RESOURCE_EXHAUSTED (gRPC's own size check)                       |
| only unknown verifiers                  | NOT_FOUND naming them and the installed ones                     |
| unknown verifier next to known ones     | OK call; that verifier's result VERIFIER_NOT_FOUND per item      |
| blank / repeated verifier name          | INVALID_ARGUMENT                                                 |
| knowledge item without reference        | OK call; result INVALID_ITEM "item <i>: ... reference"           |
| invalid UTF-8 in a string field         | INVALID_ARGUMENT (Score and ScoreSteps; not gRPC's INTERNAL)     |
| bytes that are not a protobuf message   | INVALID_ARGUMENT                                                 |
| expired deadline, nothing scored in time | DEADLINE_EXCEEDED (the call; per item when others were scored)  |
| deadline-less call, require_deadline    | INVALID_ARGUMENT (core's DeadlinePolicy)                         |
| empty / out-of-order stream message     | the stream goes on; that response's status is INVALID_ITEM       |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest

from safework.core.rpc import DeadlinePolicy, connect
from safework.core.rpc.gen.verifier.v1 import verifier_pb2 as pb
from safework.core.rpc.gen.verifier.v1 import verifier_pb2_grpc as pb_grpc
from safework.verifiers.server import RequestLimits, RewardServer, ServerConfig, start_reward_server
from safework.verifiers.server.probe import KnowledgeProbe, SafetyProbe

pytestmark = pytest.mark.slow  # loads the embedded MiniLM encoder

MAX_MESSAGE = 64 * 1024
SCORE = "/safework.verifier.v1.VerifierService/Score"
STEPS = "/safework.verifier.v1.VerifierService/ScoreSteps"


@pytest.fixture(scope="module")
def server() -> Iterator[RewardServer]:
    limits = RequestLimits(max_items=4, max_message_bytes=MAX_MESSAGE)
    verifiers = {"probe-safety": SafetyProbe(), "probe-knowledge": KnowledgeProbe()}
    with start_reward_server(verifiers, config=ServerConfig(limits=limits)) as s:
        yield s


@pytest.fixture(scope="module")
def channel(server: RewardServer) -> Iterator[grpc.Channel]:
    with connect(
        server.target, default_timeout=20.0, retries=0
    ) as ch:  # client may send more than the server takes
        yield ch


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.VerifierServiceStub:
    return pb_grpc.VerifierServiceStub(channel)


def _item(prompt: str = "q", response: str = "a", **kw: str) -> pb.ScoreItem:
    return pb.ScoreItem(prompt=prompt, response=response, **kw)  # type: ignore[arg-type]


def _fails(call: Callable[[], object], code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.RpcError) as info:
        call()
    error = info.value
    assert error.code() == code, f"{error.code()}: {error.details()}"
    return str(error.details())


def test_empty_batch(stub: pb_grpc.VerifierServiceStub) -> None:
    details = _fails(
        lambda: stub.Score(pb.ScoreRequest(verifiers=["probe-safety"])), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "no items" in details and "at least one" in details


def test_too_many_items_names_the_limit(stub: pb_grpc.VerifierServiceStub) -> None:
    request = pb.ScoreRequest(items=[_item()] * 5, verifiers=["probe-safety"])
    details = _fails(lambda: stub.Score(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert "5 items" in details and "limit of 4 items per request" in details and "split" in details


def test_oversized_message(stub: pb_grpc.VerifierServiceStub) -> None:
    request = pb.ScoreRequest(items=[_item(prompt="x" * (MAX_MESSAGE + 1))], verifiers=["probe-safety"])
    details = _fails(lambda: stub.Score(request), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert str(MAX_MESSAGE) in details or "larger than max" in details


def test_only_unknown_verifiers_is_not_found(stub: pb_grpc.VerifierServiceStub) -> None:
    request = pb.ScoreRequest(items=[_item()], verifiers=["safety-72b"])
    details = _fails(lambda: stub.Score(request), grpc.StatusCode.NOT_FOUND)
    assert "'safety-72b'" in details and "installed: probe-knowledge, probe-safety" in details


def test_unknown_next_to_known_is_per_item(stub: pb_grpc.VerifierServiceStub) -> None:
    reply = stub.Score(pb.ScoreRequest(items=[_item(), _item()], verifiers=["probe-safety", "safety-72b"]))
    for item in reply.items:
        ok, missing = item.results
        assert ok.status.code == pb.RESULT_CODE_OK and 0.0 <= ok.score <= 1.0
        assert missing.verifier == "safety-72b" and missing.status.code == pb.RESULT_CODE_VERIFIER_NOT_FOUND
        assert item.status.code == pb.RESULT_CODE_OK


@pytest.mark.parametrize("names", [["probe-safety", "probe-safety"], ["probe-safety", " "]])
def test_blank_or_repeated_verifier_names(stub: pb_grpc.VerifierServiceStub, names: list[str]) -> None:
    details = _fails(
        lambda: stub.Score(pb.ScoreRequest(items=[_item()], verifiers=names)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "named twice" in details or "empty" in details


def test_missing_reference_names_the_item(stub: pb_grpc.VerifierServiceStub) -> None:
    items = [_item(reference="Paris"), _item(), _item(reference="")]
    reply = stub.Score(pb.ScoreRequest(items=items, verifiers=["probe-knowledge"]))
    codes = [item.results[0].status.code for item in reply.items]
    assert codes == [pb.RESULT_CODE_OK, pb.RESULT_CODE_INVALID_ITEM, pb.RESULT_CODE_INVALID_ITEM]
    for index in (1, 2):
        message = reply.items[index].results[0].status.message
        assert message.startswith(f"item {index}:") and "reference" in message
        assert reply.items[index].status.code == pb.RESULT_CODE_INVALID_ITEM


def _score_item_with_bad_utf8() -> bytes:
    """A ScoreRequest whose item prompt (field 2) holds the bytes FF FE: invalid UTF-8 in a string."""
    item = b"\x12\x02\xff\xfe" + b"\x1a\x01a"  # prompt = FF FE, response = "a"
    return b"\x0a" + bytes([len(item)]) + item + b"\x12\x0cprobe-safety"  # items, verifiers


@pytest.mark.parametrize("payload", [_score_item_with_bad_utf8(), b"\xff\xff\xff\xff not protobuf"])
def test_undecodable_score_request(channel: grpc.Channel, payload: bytes) -> None:
    call = channel.unary_unary(SCORE, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    details = _fails(lambda: call(payload, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)
    assert "not a valid safework.verifier.v1.ScoreRequest" in details and "UTF-8" in details


def test_invalid_utf8_on_the_step_stream(channel: grpc.Channel) -> None:
    call = channel.stream_stream(STEPS, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    trace_open = b"\x0a\x01t" + b"\x12\x02\xff\xfe"  # TraceOpen(trace_id="t", prompt=FF FE)
    message = b"\x0a" + bytes([len(trace_open)]) + trace_open
    details = _fails(lambda: list(call(iter([message]), timeout=10)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "ScoreStepsRequest" in details


def test_expired_deadline(stub: pb_grpc.VerifierServiceStub) -> None:
    request = pb.ScoreRequest(items=[_item()], verifiers=["probe-safety"])
    for timeout in (0.0001, 0.001, 0.01):  # expired before sending, on arrival, or while queued

        def call(t: float = timeout) -> object:
            return stub.Score(request, timeout=t)

        _fails(call, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_required_deadline() -> None:
    verifiers = {"probe-safety": SafetyProbe()}
    policy = DeadlinePolicy(require_deadline=True)
    with (
        start_reward_server(verifiers, deadlines=policy) as srv,
        connect(srv.target, default_timeout=None) as ch,
    ):
        stub = pb_grpc.VerifierServiceStub(ch)
        request = pb.ScoreRequest(items=[_item()], verifiers=["probe-safety"])
        details = _fails(lambda: stub.Score(request), grpc.StatusCode.INVALID_ARGUMENT)
        assert "requires a deadline" in details
        assert stub.Score(request, timeout=10).items[0].status.code == pb.RESULT_CODE_OK


def test_bad_stream_messages_keep_the_stream_alive(stub: pb_grpc.VerifierServiceStub) -> None:
    messages = [
        pb.ScoreStepsRequest(),  # no kind set
        pb.ScoreStepsRequest(open=pb.TraceOpen(trace_id="t", prompt="q", verifiers=["probe-safety"])),
        pb.ScoreStepsRequest(step=pb.StepAppend(trace_id="t", step_index=3, text="too far")),
        pb.ScoreStepsRequest(open=pb.TraceOpen(trace_id="w", prompt="q", principle_weights={"safety": -1.0})),
        pb.ScoreStepsRequest(step=pb.StepAppend(trace_id="w", step_index=0, text="s")),
        pb.ScoreStepsRequest(step=pb.StepAppend(trace_id="t", step_index=0, text="fine")),
        pb.ScoreStepsRequest(close=pb.TraceClose(trace_id="never-opened")),
    ]
    empty, ahead, weights, fine = list(stub.ScoreSteps(iter(messages), timeout=20))
    assert empty.status.code == pb.RESULT_CODE_INVALID_ITEM and "set exactly one of" in empty.status.message
    assert ahead.status.code == pb.RESULT_CODE_INVALID_ITEM and "expected 0" in ahead.status.message
    assert weights.status.code == pb.RESULT_CODE_INVALID_ITEM and "finite and >= 0" in weights.status.message
    assert fine.status.code == pb.RESULT_CODE_OK and 0.0 <= fine.value <= 1.0
