"""The CredID protocol end to end on 127.0.0.1: a TTP (SQLite store) and two vendors on the embedded model,
every link mTLS, every request signed. Vendors get seeds without sending a prompt, generate through their
Generate RPC, and the TTP attributes those texts to the right vendor and identity; a human passage goes to
no vendor; a vendor that is down makes the decision partial; forged, replayed and foreign requests fail
with the right status and leave nothing behind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest

from safework.core.rpc import build_server, connect
from safework.core.rpc.gen.watermark.v1 import ttp_pb2, ttp_pb2_grpc, vendor_pb2, vendor_pb2_grpc
from safework.watermark.security.pki import server_tls
from safework.watermark.ttp.service import sign_as

if TYPE_CHECKING:
    from conftest import Net  # the shared network (fixture `net`) lives in conftest.py

pytestmark = pytest.mark.slow
PROMPTS = {  # long-answer requests: a one-line answer carries too few marked tokens to attribute
    "acme": "Write several detailed paragraphs about why people enjoy walking in autumn forests.",
    "globex": "Explain in several detailed paragraphs how a bicycle's gears help a rider climb hills.",
}
HUMAN = (
    "The committee met on Tuesday to review the budget for the new library wing. After a long discussion "
    "about heating costs and the price of shelving, members agreed to postpone the vote until the architect "
    "could present revised drawings. Several residents spoke in favour of keeping the old reading room, "
    "which has served the town since the nineteenth century, and asked that its windows be restored rather "
    "than replaced. The chair thanked everyone for their patience and promised a decision before spring."
)


def _attribute(net: Net, text: str) -> Any:
    request = ttp_pb2.AttributeRequest(text=text, request_id="t")
    return net.ttp_stub("auditor").Attribute(
        sign_as(request, "Attribute", net.keys["auditor"], "auditor"), timeout=600
    )


def test_generated_texts_are_attributed_to_their_vendor_and_human_text_to_none(net: Net) -> None:
    for name in PROMPTS:  # one prompt per vendor of `net`
        stub = vendor_pb2_grpc.VendorServiceStub(net.channel("auditor", net.vendors[name].target))
        sampling = vendor_pb2.SamplingParams(max_new_tokens=160, temperature=1.0, top_p=1.0, sampling_seed=7)
        out = stub.Generate(
            vendor_pb2.GenerateRequest(prompt=PROMPTS[name], chat=True, sampling=sampling), timeout=600
        )
        assert out.generated_tokens > 60, out.text
        answer = _attribute(net, out.text)
        assert answer.decision == ttp_pb2.DECISION_ATTRIBUTED, answer
        assert answer.vendor_id == name and answer.seed_id == out.seed_id
        assert answer.identity.model_id == "default" and not answer.partial
    batch = vendor_pb2_grpc.VendorServiceStub(net.channel("auditor", net.vendors["acme"].target))
    sampling = vendor_pb2.SamplingParams(max_new_tokens=24, temperature=0.7, top_p=0.9, sampling_seed=3)
    prompts = ["Name a river.", "Name a mountain.", "Name a lake."]
    answers = batch.GenerateBatch(
        vendor_pb2.GenerateBatchRequest(prompts=prompts, chat=True, sampling=sampling), timeout=600
    ).responses
    acme_grant = net.servicers["acme"].grants.current("default")
    assert acme_grant is not None and all(a.text for a in answers) and len(answers) == 3
    assert {a.seed_id for a in answers} == {acme_grant.seed_id}
    with pytest.raises(grpc.RpcError) as empty:
        batch.GenerateBatch(vendor_pb2.GenerateBatchRequest(prompts=[], chat=True), timeout=60)
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "1..64 prompts" in str(
        empty.value.details()
    )
    human = _attribute(net, HUMAN)
    assert human.decision == ttp_pb2.DECISION_NONE and not human.partial
    assert all(f.signature_valid for f in human.findings)


def test_attribution_is_rate_limited_per_requester_and_the_client_waits_its_turn(net: Net) -> None:
    from safework.watermark.client import Party, TtpClient
    from safework.watermark.security.messages import RETRY_AFTER_KEY
    from safework.watermark.security.rate_limit import TokenBucketLimiter

    saved = net.ttp_servicer.limiter
    net.ttp_servicer.limiter = TokenBucketLimiter(rate_per_s=0.2, burst=1)  # one now, the next in 5 s
    try:
        assert _attribute(net, HUMAN).decision == ttp_pb2.DECISION_NONE
        with pytest.raises(grpc.RpcError) as limited:
            _attribute(net, HUMAN)
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "too many attributions from 'auditor'" in str(limited.value.details())
        wait_ms = int(dict(limited.value.trailing_metadata())[RETRY_AFTER_KEY])
        assert 0 < wait_ms <= 5000
        with TtpClient(net.ttp.target, Party(net.folder, "auditor", net.keys["auditor"])) as client:
            with pytest.raises(grpc.RpcError):
                client.attribute(HUMAN, max_wait_s=0)  # no retry asked for
            assert client.attribute(HUMAN, max_wait_s=30).decision == "none"  # waits, then succeeds
    finally:
        net.ttp_servicer.limiter = saved


def test_the_audit_log_records_every_event_and_its_chain_verifies(net: Net) -> None:
    from safework.watermark.ttp.audit import verify_store

    assert verify_store(net.store).ok
    page = net.ttp_stub("auditor").GetAuditLog(ttp_pb2.GetAuditLogRequest())
    kinds = [e.kind_name for e in page.entries]
    assert kinds[:4] == ["vendor_registered", "seed_issued"] * 2
    assert kinds.count("attribution") >= 3
    assert all(b"prompt" not in e.body for e in page.entries)


def test_a_vendor_that_is_down_makes_the_decision_partial(net: Net) -> None:
    net.vendors["globex"].stop(0)
    try:
        answer = _attribute(net, HUMAN)
        assert answer.partial and list(answer.missing_vendor_ids) == ["globex"]
        assert answer.decision == ttp_pb2.DECISION_NONE
    finally:
        servicer = net.servicers["globex"]
        port = int(net.vendors["globex"].target.rsplit(":", 1)[1])
        net.vendors["globex"] = build_server(
            f"127.0.0.1:{port}",
            [(vendor_pb2_grpc.add_VendorServiceServicer_to_server, servicer)],
            tls=server_tls(net.folder, "globex"),
        )


def test_forged_replayed_and_foreign_requests_are_refused_and_nothing_is_stored(net: Net) -> None:
    grants = net.store.count_grants()
    audit = net.store.audit_length()
    request = ttp_pb2.IssueSeedRequest(
        vendor_id="acme", identity=ttp_pb2.IdentityMessage(model_id="default", model_version="2")
    )
    signed = sign_as(request, "IssueSeed", net.keys["acme"], "acme")
    net.ttp_stub("acme").IssueSeed(signed)  # a new version: a new grant
    with pytest.raises(grpc.RpcError) as replay:
        net.ttp_stub("acme").IssueSeed(signed)
    assert replay.value.code() == grpc.StatusCode.UNAUTHENTICATED and "nonce" in replay.value.details()
    other = ttp_pb2.IssueSeedRequest(vendor_id="globex", identity=ttp_pb2.IdentityMessage(model_id="default"))
    with pytest.raises(grpc.RpcError) as foreign:  # acme's certificate, acting for globex
        net.ttp_stub("acme").IssueSeed(sign_as(other, "IssueSeed", net.keys["acme"], "acme"))
    assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
    register = ttp_pb2.RegisterVendorRequest(vendor_id="mallory", endpoint="127.0.0.1:1", model_ids=["x"])
    with pytest.raises(grpc.RpcError) as not_admin:
        net.ttp_stub("acme").RegisterVendor(sign_as(register, "RegisterVendor", net.keys["acme"], "acme"))
    assert not_admin.value.code() == grpc.StatusCode.PERMISSION_DENIED
    tampered = sign_as(ttp_pb2.AttributeRequest(text=HUMAN), "Attribute", net.keys["auditor"], "auditor")
    tampered.text = HUMAN + " (edited)"
    with pytest.raises(grpc.RpcError) as forged:
        net.ttp_stub("auditor").Attribute(tampered)
    assert forged.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert net.store.count_grants() == grants + 1  # only the one legitimate new grant
    assert net.store.audit_length() == audit + 1
    assert net.store.get_vendor("mallory") is None


def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details() or ""


def test_bad_input_matrix(net: Net) -> None:
    """Each bad request gets its status and a message naming the problem; none of them stores anything."""
    import time

    from safework.watermark.security.messages import method_name, sign_message

    grants, audit, vendors = net.store.count_grants(), net.store.audit_length(), len(net.store.list_vendors())
    seed = ttp_pb2.IssueSeedRequest(
        vendor_id="stranger", identity=ttp_pb2.IdentityMessage(model_id="default")
    )
    code, text = _code(
        lambda: net.ttp_stub("stranger").IssueSeed(
            sign_as(seed, "IssueSeed", net.keys["stranger"], "stranger")
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED and "registered vendor" in text

    stale = ttp_pb2.AttributeRequest(text="some text to attribute")
    sign_message(
        stale, method_name("TtpService", "Attribute"), net.keys["auditor"], "auditor", now=time.time() - 300
    )
    code, text = _code(lambda: net.ttp_stub("auditor").Attribute(stale))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "ago" in text

    wrong_key = sign_as(ttp_pb2.AttributeRequest(text="x y z"), "Attribute", net.keys["stranger"], "auditor")
    code, text = _code(lambda: net.ttp_stub("auditor").Attribute(wrong_key))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "not registered" in text

    for bad_text, needle in (("   ", "empty"), ("word " * 25_000, "characters")):
        request = sign_as(
            ttp_pb2.AttributeRequest(text=bad_text), "Attribute", net.keys["auditor"], "auditor"
        )
        code, text = _code(lambda request=request: net.ttp_stub("auditor").Attribute(request))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and needle in text

    channel = net.channel("auditor", net.ttp.target)
    raw = channel.unary_unary("/safework.watermark.v1.TtpService/Attribute")
    code, text = _code(lambda: raw(b"\x0a\x03\xff\xfe\xfd", timeout=30))  # field 1 (text) = invalid UTF-8
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "UTF-8" in text

    from safework.core.rpc import ClientTls

    for tls in (None, ClientTls(net.folder / "ca.pem")):  # plaintext; TLS without a client certificate

        def call(tls: Any = tls) -> Any:
            with connect(net.ttp.target, tls=tls, retries=0) as ch:
                return ttp_pb2_grpc.TtpServiceStub(ch).GetAuditLog(ttp_pb2.GetAuditLogRequest(), timeout=10)

        code, _ = _code(call)
        assert code == grpc.StatusCode.UNAVAILABLE

    assert (net.store.count_grants(), net.store.audit_length(), len(net.store.list_vendors())) == (
        grants,
        audit,
        vendors,
    )


def test_a_vendor_answering_for_another_is_not_believed(net: Net) -> None:
    """globex answers acme's request with a report in its own key: the TTP flags it, attributes nothing."""
    from safework.watermark.ttp.attribution import Attributor

    globex = net.channel("ttp", net.vendors["globex"].target)

    def impostor(vendor: Any, request: Any, timeout_s: float) -> Any:
        return vendor_pb2_grpc.VendorServiceStub(globex).Extract(request, timeout=timeout_s)

    attributor = Attributor(net.store, net.keys["ttp"], impostor)
    response = attributor.attribute(HUMAN, 0.01, ["acme"], 0, "impostor")
    (finding,) = response.findings
    assert not finding.signature_valid and "acme" in finding.error
    assert response.partial and list(response.missing_vendor_ids) == ["acme"]
    assert response.decision == ttp_pb2.DECISION_NONE
