"""safework core: the shared ground every safework package stands on.

Plugin host (`plugins`, `hookspecs`), shared types, the embedded model loader (`models`), the registry-data
catalogue (`data`), the native-op builder (`ops`), gRPC plumbing (`rpc`) and the `safework` CLI.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("safework-core")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
