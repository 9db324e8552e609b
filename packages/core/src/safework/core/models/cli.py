import click


@click.group("model")
def model_group() -> None:
    """(in progress)"""
