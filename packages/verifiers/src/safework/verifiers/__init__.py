"""safework verifiers: multi-principled verifiers and the reward server (SafeLadder §4–§5).

This release carries the package shell and its CLI group; the verifiers themselves arrive with the
verifiers issue and register through ``register_verifiers``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("safework-verifiers")
except PackageNotFoundError:
    __version__ = "0+unknown"
