"""Click commands of the ``safework verifiers`` group, one module per command."""
