"""One process by default; DeepSpeed ZeRO-2/3 when launched by ``torchrun`` or ``deepspeed`` (WORLD_SIZE > 1).

How a distributed RL step stays equal to the single-process one on the same global batch:

* every rank draws the same prompts and rolls out its own contiguous share of them (group ids stay global,
  and sampling seeds depend on the prompt, not the rank, so the responses are the ones one process samples);
* rewards are scored where the responses are; the (reward, group, length) rows are gathered so each rank
  computes the *global* advantages, zero-variance set and mini-batch assignment;
* a mini-batch is a set of groups, assigned globally (the j-th kept group goes to mini-batch j mod M); each
  rank's loss is rescaled by ``world · local weight / global weight`` (sequences, or tokens for token-mean),
  because DeepSpeed averages gradients over ranks — the sum is then the global mini-batch's mean;
* a rank with nothing in a mini-batch still joins the gradient all-reduce with a zero-weighted pass.

On CPU the collectives run over gloo; on GPUs DeepSpeed's default (NCCL). Checkpoints gather ZeRO-3's
partitioned parameters on every rank and rank 0 writes them; exact resume (optimiser state included) is
single-process in this release, and a distributed run refuses ``--resume``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

from safework.core.errors import ConfigError

T = TypeVar("T")


def launched_world() -> int:
    """Ranks the launcher started (1 when run as a plain process)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


class Parallel:
    """The single-process case; :class:`DeepSpeedParallel` overrides what differs."""

    rank = 0
    world = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> range:
        """The prompt indices this rank rolls out."""
        if n % self.world:
            raise ConfigError(
                f"prompts_per_step ({n}) must be a multiple of the number of ranks ({self.world}) so every "
                "rank rolls out whole groups"
            )
        size = n // self.world
        return range(self.rank * size, (self.rank + 1) * size)

    def gather(self, values: Sequence[T]) -> list[T]:
        """Every rank's ``values``, concatenated in rank order."""
        return list(values)

    def wrap(self, model: Any, optimiser: Any, max_grad_norm: float, bf16: bool) -> Any:
        return model

    def backward_step(self, model: Any, loss: Any, optimiser: Any, max_grad_norm: float) -> float:
        """Backward, clip, optimiser step; the gradient norm before clipping."""
        import torch

        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimiser.step()
        return float(norm)

    @contextmanager
    def full_parameters(self, model: Any) -> Iterator[None]:
        """Inside, every parameter is whole on every rank (ZeRO-3 gathers its partitions)."""
        yield


class DeepSpeedParallel(Parallel):
    def __init__(self, zero_stage: int) -> None:
        try:
            import deepspeed
        except ImportError as exc:
            raise ConfigError(
                "this run was launched with several ranks, which needs DeepSpeed: "
                "pip install -c constraints.txt 'safework-rl[deepspeed]'"
            ) from exc
        import torch.distributed as dist

        if zero_stage not in (2, 3):
            raise ConfigError(f"distributed.zero_stage must be 2 or 3 (got {zero_stage})")
        if not dist.is_initialized():
            deepspeed.init_distributed(dist_backend="gloo" if not _has_cuda() else "nccl")
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.zero_stage = zero_stage
        self.engine: Any = None

    def gather(self, values: Sequence[T]) -> list[T]:
        import torch.distributed as dist

        parts: list[list[T] | None] = [None] * self.world
        dist.all_gather_object(parts, list(values))
        return [v for part in parts for v in part or []]

    def wrap(self, model: Any, optimiser: Any, max_grad_norm: float, bf16: bool) -> Any:
        import deepspeed

        config = {
            "train_micro_batch_size_per_gpu": 1,  # the trainer forms its own mini-batches
            "gradient_accumulation_steps": 1,
            "gradient_clipping": max_grad_norm,
            "zero_optimization": {"stage": self.zero_stage},
            "bf16": {"enabled": bf16},
            "steps_per_print": 10**9,
        }
        self.engine, *_ = deepspeed.initialize(model=model, optimizer=optimiser, config=config)
        return self.engine.module

    def backward_step(self, model: Any, loss: Any, optimiser: Any, max_grad_norm: float) -> float:
        self.engine.backward(loss)
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def full_parameters(self, model: Any) -> Any:
        if self.zero_stage != 3:
            return nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def parallel_for(zero_stage: int) -> Parallel:
    return DeepSpeedParallel(zero_stage) if launched_world() > 1 else Parallel()
