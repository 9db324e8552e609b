"""Native ops: C++/OpenMP and CUDA kernels from ``csrc/``, each with a pure-torch reference.

``builder`` compiles and caches them, ``mode`` reads ``SAFEWORK_OPS``, ``dispatch`` picks native or
reference per call, and one module per op holds its public functions (``prf``: the watermark's keyed PRF).
Import the op module you need; this package itself imports nothing heavy.
"""
