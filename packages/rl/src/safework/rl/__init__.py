"""safework rl: SafeLadder post-training stages over one rollout/loss core.

This release carries the package shell and its CLI group; trainers and advantage estimators arrive with
the RL issue and register through ``register_advantage_estimators``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("safework-rl")
except PackageNotFoundError:
    __version__ = "0+unknown"
