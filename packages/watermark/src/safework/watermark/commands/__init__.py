"""The ``safework watermark`` commands, one module each."""
