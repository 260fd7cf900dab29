"""`flowwatch cache info | clear`: the local query engine's download and Parquet cache
(``$XDG_CACHE_HOME/flowwatch``, see ``flowwatch.query.local_engine.FileCache``)."""

from __future__ import annotations

import click

from flowwatch.cli.app import App


@click.group()
def cache() -> None:
    """The local query engine's cache of downloaded flow-log objects and their Parquet copies."""


@cache.command("info")
@click.pass_obj
def cache_info(app: App) -> None:
    """Where the cache is and how much it holds."""
    from flowwatch.query import human_bytes, local_engine

    root = local_engine.cache_root()
    files, size = local_engine.FileCache(root).usage()
    row = {"path": str(root), "files": files, "bytes": size}
    if app.settings.output == "json":
        app.out.json(row)
    elif app.settings.output == "csv":
        app.out.data(list(row), [list(row.values())], "csv")
    else:
        app.out.data(["path", "files", "size"], [[str(root), files, human_bytes(size)]], "table",
                     title="flowwatch cache")


@cache.command("clear")
@click.pass_obj
def cache_clear(app: App) -> None:
    """Remove every downloaded flow-log object and Parquet copy (queries download them again)."""
    from flowwatch.query import human_bytes, local_engine

    root = local_engine.cache_root()
    freed = local_engine.FileCache(root).clear()
    if freed:
        app.out.info(f"[green]✓[/green] cache cleared: {human_bytes(freed)} freed ({root})")
    else:
        app.out.info(f"cache already empty ({root})")
