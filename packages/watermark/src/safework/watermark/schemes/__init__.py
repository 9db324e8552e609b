"""Built-in watermark schemes: credid (the paper's), and the kgw, mpac and ctwl-hash baselines.

Each lives in its own module and registers through ``safework.watermark.plugin``; the interface is
:class:`safework.watermark.schemes.base.Scheme`.
"""
