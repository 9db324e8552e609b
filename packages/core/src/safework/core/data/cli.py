import click


@click.group("data")
def data_group() -> None:
    """(in progress)"""
