"""What a route reads from the app it serves in: the config, the writer lane, and the state
as fresh as a read must be. The API's routes and the web pages read through here alike."""

from __future__ import annotations

import asyncio

from fastapi import Request

from app.config import Config
from gitops.errors import StoreUnavailable
from gitops.index import Index
from gitops.tree import Tree
from gitops.writer import Writer

# How long a read waits for the lane to catch up with the branch before answering 503.
READ_WAIT = 10.0


def config_of(request: Request) -> Config:
    config: Config = request.app.state.config
    return config


def writer_of(request: Request) -> Writer:
    writer: Writer = request.app.state.writer
    return writer


async def snapshot(request: Request) -> tuple[str | None, Index, Tree]:
    """The state as the branch had it at most a few seconds ago (docs/reference.md section 6: reads
    are fresh, also on a replica that has not written)."""
    writer = writer_of(request)
    pending = writer.refresh_if_stale()
    if pending is not None:
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(pending)), READ_WAIT)
        except TimeoutError:
            raise StoreUnavailable(
                f"the state could not be brought up to the branch within {READ_WAIT:.0f}s; "
                "retry") from None
    return writer.snapshot()
