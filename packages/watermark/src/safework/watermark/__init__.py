"""safework watermark: the CredID multi-bit watermark engine and its TTP/vendor protocol.

This release carries the package shell and its CLI group; schemes arrive with the watermark issue and
register through ``register_watermark_schemes``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("safework-watermark")
except PackageNotFoundError:
    __version__ = "0+unknown"
