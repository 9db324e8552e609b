"""Watermarking inside a vLLM V1 engine: a batch-level logits processor with one payload per request.

Installing safework-watermark registers :class:`WatermarkLogitsProcessor` in the ``vllm.logits_processors``
entry-point group, and vLLM then builds it into every engine of that environment. It stays inert (it
declines every request) until the engine is configured through the environment of the process that starts
vLLM:

* ``SAFEWORK_WATERMARK_SCHEME``: a registered scheme (``credid``, ``kgw``, ...); unset = no watermarking;
* ``SAFEWORK_WATERMARK_KEY_FILE``: the key file written by ``safework watermark keygen``;
* ``SAFEWORK_WATERMARK_BITS``: the payload width (default 16; ``0`` for the zero-bit ``kgw``);
* ``SAFEWORK_WATERMARK_OPTIONS``: optional JSON object of further ``load_watermarker`` options
  (``{"delta": 3.0, "symbol_bits": 4, "crc": true}``);
* ``SAFEWORK_WATERMARK_MODEL``: optional model spec for schemes with a proxy LM (default: the folder vLLM
  serves, loaded a second time by safework/transformers).

A request opts in through ``SamplingParams(extra_args={"safework_watermark": {"payload": "beef"}})``
(``"bits"`` may be given too and must equal the engine's; zero-bit schemes take ``{}``), or through the flat
form ``{"safework_watermark": "beef"}`` (``""`` for zero-bit), which is what the OpenAI-compatible server
accepts as ``"vllm_xargs"``. Requests without that key are left alone. Bad requests are refused at
admission (:meth:`validate_params`, HTTP 400 online).

The environment is the engine configuration (rather than vLLM's ``additional_config``) because
``validate_params`` is a classmethod that runs in the frontend without the engine's config: only the
environment, which the spawned EngineCore inherits, lets both sides agree on what a valid request is.

vLLM is imported here only; ``import safework.watermark`` never imports it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

from safework.core.types import WatermarkPayload
from safework.watermark.sampling import RowSampling, bias_in_nucleus_

if TYPE_CHECKING:
    from vllm.config import VllmConfig

    from safework.watermark.engine import Watermarker

# A child of vLLM's logger, so these lines come out through vLLM's handler, formatted like its own.
logger = logging.getLogger("vllm.safework_watermark")

EXTRA_ARGS_KEY = "safework_watermark"
ENV_SCHEME = "SAFEWORK_WATERMARK_SCHEME"
ENV_KEY_FILE = "SAFEWORK_WATERMARK_KEY_FILE"
ENV_BITS = "SAFEWORK_WATERMARK_BITS"
ENV_OPTIONS = "SAFEWORK_WATERMARK_OPTIONS"
ENV_MODEL = "SAFEWORK_WATERMARK_MODEL"
DEFAULT_BITS = 16
PLACEHOLDER = -1  # vLLM's stand-in for a token sampled but not yet copied back (async scheduling)


@dataclass(frozen=True)
class EngineSettings:
    """The engine-level watermark configuration, read from the environment."""

    scheme: str
    key_file: str
    bits: int
    options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineSettings | None:
        """The settings, None when ``SAFEWORK_WATERMARK_SCHEME`` is unset; ValueError names a bad variable."""
        env = os.environ if environ is None else environ
        scheme = env.get(ENV_SCHEME, "").strip()
        if not scheme:
            return None
        key_file = env.get(ENV_KEY_FILE, "").strip()
        if not key_file:
            raise ValueError(
                f"{ENV_SCHEME}={scheme} is set but {ENV_KEY_FILE} is not: point it at a key file "
                "(create one with `safework watermark keygen --out KEYFILE`)"
            )
        raw_bits = env.get(ENV_BITS, "").strip() or str(DEFAULT_BITS)
        try:
            bits = int(raw_bits)
        except ValueError:
            raise ValueError(f"{ENV_BITS} must be an integer, got {raw_bits!r}") from None
        if bits < 0:
            raise ValueError(f"{ENV_BITS} must be >= 0 (0 for a zero-bit scheme), got {bits}")
        raw_options = env.get(ENV_OPTIONS, "").strip()
        options: Any = {}
        if raw_options:
            try:
                options = json.loads(raw_options)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{ENV_OPTIONS} is not valid JSON ({exc})") from None
            if not isinstance(options, dict):
                raise ValueError(f"{ENV_OPTIONS} must be a JSON object, got {raw_options!r}")
        model = env.get(ENV_MODEL, "").strip() or None
        return cls(scheme, key_file, bits, options, model)


def request_payload(extra_args: Mapping[str, Any] | None, bits: int) -> WatermarkPayload | None:
    """The payload a request asks for (None: not watermarked); ValueError says what is wrong with it.

    ``bits`` is the engine's payload width; a zero-bit engine (``bits == 0``) marks presence only.
    """
    if not extra_args or extra_args.get(EXTRA_ARGS_KEY) is None:
        return None
    spec = extra_args[EXTRA_ARGS_KEY]
    if isinstance(spec, str):  # the flat form: the OpenAI server's `vllm_xargs` takes no nested objects
        spec = {"payload": spec} if spec.strip() else {}
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"extra_args[{EXTRA_ARGS_KEY!r}] must be a hex payload string or an object like "
            f"{{'payload': 'beef', 'bits': 16}}, got {spec!r}"
        )
    unknown = sorted(set(spec) - {"payload", "bits"})
    if unknown:
        raise ValueError(f"extra_args[{EXTRA_ARGS_KEY!r}] has unknown field(s) {', '.join(unknown)}")
    asked_bits = spec.get("bits", bits)
    if isinstance(asked_bits, bool) or not isinstance(asked_bits, int) or asked_bits != bits:
        raise ValueError(
            f"this engine embeds {bits}-bit payloads ({ENV_BITS}); the request asks for bits={asked_bits!r}"
        )
    payload = spec.get("payload")
    if bits == 0:
        if payload not in (None, ""):
            raise ValueError("this engine's scheme is zero-bit: it carries no payload; send {} instead")
        return WatermarkPayload(0, 0)
    if not isinstance(payload, str) or not payload.strip():
        raise ValueError(
            f"extra_args[{EXTRA_ARGS_KEY!r}] needs 'payload': a hex string of at most {bits} bits "
            "(e.g. 'beef')"
        )
    return WatermarkPayload.from_hex(payload.strip(), bits)


@dataclass
class _Row:
    payload: WatermarkPayload
    output_ids: list[int]  # vLLM's live list of the request's generated ids (prompt excluded)
    sampling: RowSampling  # the request's temperature and top-k: they bound the bias to its nucleus


def row_sampling(params: SamplingParams) -> RowSampling:
    """A request's temperature and top-k (0 or -1: no cut, in every vLLM version)."""
    top_k = params.top_k if params.top_k is not None else 0
    return RowSampling(float(params.temperature), int(top_k))


def _v2_interface() -> type:
    """Model Runner V2's processor interface (vLLM 0.32), whose plugin loader rejects non-subclasses."""
    try:
        from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsProcessor as V2
    except ImportError:  # older vLLM: V1 only
        return object
    return V2


class WatermarkLogitsProcessor(LogitsProcessor, _v2_interface()):  # type: ignore[misc]
    """vLLM V1 batch-level processor: adds each watermarked request's bias to its logits row every step.

    State is a map from persistent-batch row to (payload, reference to the request's output-id list),
    kept in step with vLLM's removed / added / moved updates. vLLM runs this processor on the raw
    logits, before penalties, temperature and top-k/top-p (there is no hook after them); the bias follows
    the default ``"nucleus"`` placement of ``safework.watermark.sampling`` with each request's own
    temperature and top-k, which needs exactly that position, so the vLLM and transformers paths embed
    the same way. Rows whose output ids end with a ``-1`` placeholder (async scheduling, vLLM issue
    #52461) are skipped for that step: the context that picks the green list is unknown there, so biasing
    would only add noise.

    The class also subclasses Model Runner V2's interface, only so that a V2 engine (vLLM's default on
    GPUs) can load the entry point at all: there it declines every request, and refuses to start when a
    watermark is configured (V2 keeps token history on the device; not implemented yet).
    """

    def __init__(self, vllm_config: VllmConfig, *runner_args: Any):
        self.rows: dict[int, _Row] = {}
        self.watermarker: Watermarker | None = None
        self.settings = EngineSettings.from_env()
        self.skipped_steps = 0
        if self.settings is None:
            return
        if len(runner_args) != 2:  # V1: (device, is_pin_memory); V2: (req_states,)
            raise ValueError(
                f"safework watermark ({ENV_SCHEME}={self.settings.scheme}) supports vLLM's V1 model runner "
                "only; start vLLM with VLLM_USE_V2_MODEL_RUNNER=0"
            )
        if vllm_config.scheduler_config.async_scheduling:
            raise ValueError(
                f"safework watermark ({ENV_SCHEME}={self.settings.scheme}) needs vLLM async scheduling off: "
                "under async scheduling a plugin logits processor sees -1 placeholders instead of the "
                "tokens it conditions on (vLLM issue #52461). Start the engine with async_scheduling=False "
                "(`vllm serve --no-async-scheduling`)."
            )
        self.watermarker = self._build(vllm_config)
        if self.watermarker.bits != self.settings.bits:
            raise ValueError(
                f"scheme {self.settings.scheme!r} embeds {self.watermarker.bits}-bit payloads but "
                f"{ENV_BITS}={self.settings.bits}; set {ENV_BITS}={self.watermarker.bits}"
            )
        logger.info(
            "safework watermark on: scheme %s, %d-bit payloads, key file %s",
            self.settings.scheme,
            self.watermarker.bits,
            self.settings.key_file,
        )

    def _build(self, vllm_config: VllmConfig) -> Watermarker:
        from safework.watermark.engine import load_watermarker
        from safework.watermark.keys import WatermarkKey

        assert self.settings is not None
        model = self.settings.model or str(vllm_config.model_config.model)
        options = dict(self.settings.options)
        return load_watermarker(
            self.settings.scheme,
            WatermarkKey.from_file(self.settings.key_file),
            self.settings.bits,
            model=model,
            **options,
        )

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        extra_args = sampling_params.extra_args
        if not extra_args or extra_args.get(EXTRA_ARGS_KEY) is None:
            return
        settings = EngineSettings.from_env()
        if settings is None:
            raise ValueError(
                f"the request asks for a safework watermark but this vLLM server has none configured "
                f"(set {ENV_SCHEME} and {ENV_KEY_FILE} where the server starts)"
            )
        request_payload(extra_args, settings.bits)

    def add_request(self, req_idx: int, sampling_params: SamplingParams) -> bool:
        return False  # Model Runner V2: never reached with a watermark configured (see __init__)

    def is_argmax_invariant(self) -> bool:
        return False  # the bias moves the argmax: vLLM must apply it for greedy requests too

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is None or self.watermarker is None:
            return
        for index in batch_update.removed:
            self.rows.pop(index, None)
        for index, params, _prompt_ids, output_ids in batch_update.added:
            self.rows.pop(index, None)  # an added request replaces whatever held the row
            try:
                payload = request_payload(params.extra_args, self.watermarker.bits)
            except ValueError as exc:  # validate_params refuses these first; never fail the whole batch
                logger.error("safework watermark: request left unwatermarked: %s", exc)
                continue
            if payload is not None:
                self.rows[index] = _Row(payload, output_ids, row_sampling(params))
        for a, b, direction in batch_update.moved:
            row_a = self.rows.pop(a, None)
            row_b = self.rows.pop(b, None)
            if row_a is not None:
                self.rows[b] = row_a
            if row_b is not None and direction == MoveDirectionality.SWAP:
                self.rows[a] = row_b

    def apply(self, logits: torch.Tensor, ctx: Any = None) -> torch.Tensor:
        if not self.rows or self.watermarker is None:
            return logits
        batch = logits.shape[0]
        generated: list[Sequence[int]] = [()] * batch
        payloads: list[WatermarkPayload | None] = [None] * batch
        sampling: list[RowSampling | None] = [None] * batch
        for index, row in self.rows.items():
            if index >= batch:
                continue
            ids = row.output_ids
            if ids and ids[-1] == PLACEHOLDER:
                self.skipped_steps += 1
                if self.skipped_steps == 1:
                    logger.warning(
                        "safework watermark: output ids end with a -1 placeholder (async scheduling, vLLM "
                        "#52461); that row is left unbiased for the step"
                    )
                continue
            generated[index] = ids
            payloads[index] = row.payload
            sampling[index] = row.sampling
        if any(p is not None for p in payloads):
            bias_in_nucleus_(self.watermarker, logits, generated, payloads, sampling)
        return logits
