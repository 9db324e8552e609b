"""The vLLM logits processor's bookkeeping, without an engine: settings, request parsing, batch updates."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality

from safework.core.types import WatermarkPayload
from safework.watermark import vllm_processor as vp

VOCAB = 32


class StandIn:
    """A watermarker that records what it was asked and adds +1 at column (payload value % VOCAB)."""

    def __init__(self, bits: int = 16) -> None:
        self.bits = bits
        self.scheme = SimpleNamespace(context_width=1)
        self.calls: list[tuple[list[list[int]], list[WatermarkPayload | None]]] = []

    def bias_(
        self,
        logits: torch.Tensor,
        generated: Sequence[Sequence[int]],
        payloads: Sequence[WatermarkPayload | None],
    ) -> None:
        assert logits.shape[0] == len(generated) == len(payloads)
        self.calls.append(([list(g) for g in generated], list(payloads)))
        for row, payload in enumerate(payloads):
            if payload is not None:
                logits[row, payload.value % VOCAB] += 1.0


def config(*, async_scheduling: bool = False) -> Any:
    return SimpleNamespace(
        scheduler_config=SimpleNamespace(async_scheduling=async_scheduling),
        model_config=SimpleNamespace(model="/nonexistent/model"),
    )


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> StandIn:
    monkeypatch.setenv(vp.ENV_SCHEME, "credid")
    monkeypatch.setenv(vp.ENV_KEY_FILE, str(tmp_path / "key.json"))
    monkeypatch.setenv(vp.ENV_BITS, "16")
    stand_in = StandIn()
    monkeypatch.setattr(vp.WatermarkLogitsProcessor, "_build", lambda self, cfg: stand_in)
    return stand_in


def params(payload: str | None) -> SamplingParams:
    extra = None if payload is None else {vp.EXTRA_ARGS_KEY: {"payload": payload}}
    return SamplingParams(extra_args=extra)


def update(
    size: int, *, removed: Sequence[int] = (), added: Sequence[Any] = (), moved: Sequence[Any] = ()
) -> Any:
    return BatchUpdate(batch_size=size, removed=list(removed), added=list(added), moved=list(moved))


def biased_rows(logits: torch.Tensor) -> dict[int, int]:
    return {row: int(col) for row, col in (logits != 0).nonzero().tolist()}


# ------------------------------------------------------------------------------------------------ settings


def test_unset_scheme_means_no_watermark() -> None:
    assert vp.EngineSettings.from_env({}) is None


def test_settings_from_env() -> None:
    settings = vp.EngineSettings.from_env(
        {vp.ENV_SCHEME: "kgw", vp.ENV_KEY_FILE: "/k", vp.ENV_BITS: "0", vp.ENV_OPTIONS: '{"delta": 3.0}'}
    )
    assert settings == vp.EngineSettings("kgw", "/k", 0, {"delta": 3.0}, None)
    assert (
        vp.EngineSettings.from_env({vp.ENV_SCHEME: "credid", vp.ENV_KEY_FILE: "/k"}).bits == vp.DEFAULT_BITS
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({vp.ENV_SCHEME: "credid"}, vp.ENV_KEY_FILE),
        ({vp.ENV_SCHEME: "credid", vp.ENV_KEY_FILE: "/k", vp.ENV_BITS: "many"}, "integer"),
        ({vp.ENV_SCHEME: "credid", vp.ENV_KEY_FILE: "/k", vp.ENV_BITS: "-1"}, ">= 0"),
        ({vp.ENV_SCHEME: "credid", vp.ENV_KEY_FILE: "/k", vp.ENV_OPTIONS: "{"}, "JSON"),
        ({vp.ENV_SCHEME: "credid", vp.ENV_KEY_FILE: "/k", vp.ENV_OPTIONS: "[1]"}, "object"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        vp.EngineSettings.from_env(env)


# ------------------------------------------------------------------------------------------------ requests


def test_request_payloads() -> None:
    key = vp.EXTRA_ARGS_KEY
    assert vp.request_payload(None, 16) is None
    assert vp.request_payload({"other": 1}, 16) is None
    assert vp.request_payload({key: None}, 16) is None
    assert vp.request_payload({key: {"payload": "beef"}}, 16) == WatermarkPayload(0xBEEF, 16)
    assert vp.request_payload({key: {"payload": "0x12", "bits": 8}}, 8) == WatermarkPayload(0x12, 8)
    assert vp.request_payload({key: {}}, 0) == WatermarkPayload(0, 0)
    assert vp.request_payload({key: "beef"}, 16) == WatermarkPayload(0xBEEF, 16)  # flat (vllm_xargs)
    assert vp.request_payload({key: ""}, 0) == WatermarkPayload(0, 0)


@pytest.mark.parametrize(
    ("spec", "bits", "message"),
    [
        (["beef"], 16, "hex payload string or an object"),
        ("", 16, "needs 'payload'"),
        ("beef", 0, "zero-bit"),
        ({"payload": "beef", "bits": 8}, 16, "16-bit"),
        ({"payload": "beef", "bits": True}, 16, "16-bit"),
        ({}, 16, "needs 'payload'"),
        ({"payload": "zz"}, 16, "not hexadecimal"),
        ({"payload": "1beef"}, 16, "does not fit"),
        ({"payload": "beef"}, 0, "zero-bit"),
        ({"payload": "beef", "colour": "red"}, 16, "unknown field"),
    ],
)
def test_bad_requests_are_refused(spec: Any, bits: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        vp.request_payload({vp.EXTRA_ARGS_KEY: spec}, bits)


def test_validate_params(configured: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    vp.WatermarkLogitsProcessor.validate_params(params("beef"))
    vp.WatermarkLogitsProcessor.validate_params(params(None))
    with pytest.raises(ValueError, match="not hexadecimal"):
        vp.WatermarkLogitsProcessor.validate_params(params("xyz"))
    monkeypatch.delenv(vp.ENV_SCHEME)
    vp.WatermarkLogitsProcessor.validate_params(params(None))
    with pytest.raises(ValueError, match="none configured"):
        vp.WatermarkLogitsProcessor.validate_params(params("beef"))


# ------------------------------------------------------------------------------------------- the processor


def test_unconfigured_processor_is_inert(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(vp.ENV_SCHEME, raising=False)
    proc = vp.WatermarkLogitsProcessor(config(async_scheduling=True), torch.device("cpu"), False)
    proc.update_state(update(1, added=[(0, params("beef"), [1], [5])]))
    logits = torch.zeros(1, VOCAB)
    assert proc.apply(logits) is logits and not logits.any()
    assert not proc.is_argmax_invariant()


def test_rows_follow_added_moved_removed(configured: StandIn) -> None:
    proc = vp.WatermarkLogitsProcessor(config(), torch.device("cpu"), False)
    out0, out1, out2 = [3], [4, 5], [6]
    proc.update_state(
        update(
            3,
            added=[
                (0, params("0001"), [1], out0),
                (1, params(None), [1], out1),
                (2, params("0002"), None, out2),
            ],
        )
    )
    logits = torch.zeros(3, VOCAB)
    proc.apply(logits)
    assert biased_rows(logits) == {0: 1, 2: 2}
    generated, payloads = configured.calls[-1]
    assert generated == [[3], [], [6]] and payloads[1] is None

    out0.append(7)  # vLLM appends to the same list: the processor sees it on the next step
    proc.update_state(None)
    proc.apply(torch.zeros(3, VOCAB))
    assert configured.calls[-1][0][0] == [3, 7]

    proc.update_state(update(3, moved=[(0, 1, MoveDirectionality.SWAP)]))
    logits = torch.zeros(3, VOCAB)
    proc.apply(logits)
    assert biased_rows(logits) == {1: 1, 2: 2}

    # the request in row 1 finishes; row 2 is compacted into row 1 (one-way move)
    proc.update_state(update(1, removed=[1], moved=[(2, 1, MoveDirectionality.UNIDIRECTIONAL)]))
    logits = torch.zeros(2, VOCAB)
    proc.apply(logits)
    assert biased_rows(logits) == {1: 2}

    # a new unwatermarked request takes over a watermarked row
    proc.update_state(update(2, added=[(1, params(None), [1], [9])]))
    logits = torch.zeros(2, VOCAB)
    calls = len(configured.calls)
    proc.apply(logits)
    assert not logits.any() and len(configured.calls) == calls


def test_placeholder_rows_are_skipped_for_the_step(configured: StandIn) -> None:
    proc = vp.WatermarkLogitsProcessor(config(), torch.device("cpu"), False)
    out0, out1 = [3, -1], [4]
    proc.update_state(update(2, added=[(0, params("0001"), [1], out0), (1, params("0002"), [1], out1)]))
    logits = torch.zeros(2, VOCAB)
    proc.apply(logits)
    assert biased_rows(logits) == {1: 2} and proc.skipped_steps == 1
    out0[-1] = 8  # vLLM fills the placeholder in
    logits = torch.zeros(2, VOCAB)
    proc.apply(logits)
    assert biased_rows(logits) == {0: 1, 1: 2}


def test_bias_stays_inside_each_requests_nucleus(configured: StandIn) -> None:
    """vLLM runs the processor before temperature and top-p: the bias reaches only tokens inside the
    request's tempered nucleus, and never a token that already followed the same context."""
    proc = vp.WatermarkLogitsProcessor(config(), torch.device("cpu"), False)
    sharp = SamplingParams(temperature=0.5, extra_args={vp.EXTRA_ARGS_KEY: "0001"})
    proc.update_state(update(2, added=[(0, sharp, [1], [4]), (1, params("0009"), [1], [2, 9, 2])]))
    logits = torch.zeros(2, VOCAB)
    logits[0, 0] = 6.0  # at T=0.5 token 0 holds > 98 % of the mass: column 1 is outside the nucleus
    before = logits.clone()
    proc.apply(logits)
    assert torch.equal(logits, before)  # row 0: outside the nucleus; row 1: token 9 already followed 2
    assert (
        proc.rows[0].sampling.temperature == 0.5 and configured.calls
    )  # the bias was computed, then bounded


def test_request_invalid_for_the_engine_is_left_alone(configured: StandIn) -> None:
    proc = vp.WatermarkLogitsProcessor(config(), torch.device("cpu"), False)
    bad = SamplingParams(extra_args={vp.EXTRA_ARGS_KEY: {"payload": "beef", "bits": 8}})
    proc.update_state(update(1, added=[(0, bad, [1], [2])]))
    assert proc.rows == {}


def test_configured_processor_refuses_async_scheduling(configured: StandIn) -> None:
    with pytest.raises(ValueError, match="async_scheduling=False"):
        vp.WatermarkLogitsProcessor(config(async_scheduling=True), torch.device("cpu"), False)


def test_configured_processor_refuses_model_runner_v2(configured: StandIn) -> None:
    with pytest.raises(ValueError, match="VLLM_USE_V2_MODEL_RUNNER=0"):
        vp.WatermarkLogitsProcessor(config(), SimpleNamespace())


def test_bits_must_match_the_scheme(configured: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vp.WatermarkLogitsProcessor, "_build", lambda self, cfg: StandIn(bits=0))
    with pytest.raises(ValueError, match=f"{vp.ENV_BITS}=0"):
        vp.WatermarkLogitsProcessor(config(), torch.device("cpu"), False)


def test_model_runner_v2_can_load_the_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcessor as V2

    monkeypatch.delenv(vp.ENV_SCHEME, raising=False)
    assert issubclass(vp.WatermarkLogitsProcessor, V2)
    proc = vp.WatermarkLogitsProcessor(config(), SimpleNamespace())
    assert proc.add_request(0, params("beef")) is False


def test_the_entry_point_names_the_processor() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="vllm.logits_processors") if e.name == "safework_watermark"]
    assert entry.load() is vp.WatermarkLogitsProcessor


def test_importing_safework_watermark_does_not_import_vllm() -> None:
    import subprocess
    import sys

    code = "import sys, safework.watermark, safework.watermark.plugin; print('vllm' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
