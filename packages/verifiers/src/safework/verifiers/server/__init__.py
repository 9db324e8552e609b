"""The reward server: verifiers behind gRPC with dynamic batching, deadlines and explicit partial failure.

- :func:`start_reward_server` / :class:`VerifierService` — the server (``safework verifiers serve``);
- :class:`RewardClient` — score remotely, failures as :class:`ScoreError` values, never numbers;
- :func:`reward_function` — any verifier, recipe or server as a TRL reward function.
"""

from safework.verifiers.server.app import RewardServer, load_verifiers, start_reward_server
from safework.verifiers.server.client import (
    AppendStep,
    CloseTrace,
    ItemScores,
    OpenTrace,
    RewardClient,
    StepResult,
    StepSession,
    VerifierDescription,
)
from safework.verifiers.server.convert import ScoreError
from safework.verifiers.server.limits import RequestLimits
from safework.verifiers.server.service import SERVICE, ServerConfig, VerifierService
from safework.verifiers.server.trl import RewardFunction, reward_function

__all__ = [
    "SERVICE",
    "AppendStep",
    "CloseTrace",
    "ItemScores",
    "OpenTrace",
    "RequestLimits",
    "RewardClient",
    "RewardFunction",
    "RewardServer",
    "ScoreError",
    "ServerConfig",
    "StepResult",
    "StepSession",
    "VerifierDescription",
    "VerifierService",
    "load_verifiers",
    "reward_function",
    "start_reward_server",
]
