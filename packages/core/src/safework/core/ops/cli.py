import click


@click.group("ops")
def ops_group() -> None:
    """(in progress)"""
