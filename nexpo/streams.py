"""Bounded async streams with backpressure policies, and pull-based combinators.

    events = Stream(maxsize=1000, policy=DROP_OLDEST, name="events")
    ...
    async for batch in events.map(enrich, concurrency=8).filter(wanted).batch(100, timeout=0.5):
        await store(batch)

``Stream`` is the buffer producers ``put`` into; ``close()`` ends it once drained. ``map``,
``filter``, ``batch`` and ``merge`` return a ``Flow``: a lazy pipeline that runs inside the
consumer's task (``map`` with ``concurrency`` > 1 and ``merge`` start helper tasks). Cancelling
the consumer therefore cancels the pipeline: every helper task is cancelled and awaited before
the cancellation propagates. A consumer that stops early should close the flow
(``async with contextlib.aclosing(flow.__aiter__()) as items: ...``) or let it be collected.
"""

from __future__ import annotations

from nexpo._streams.flow import Flow
from nexpo._streams.merge import merge
from nexpo._streams.stream import BLOCK, DROP_NEWEST, DROP_OLDEST, Policy, Stream
from nexpo.errors import StreamClosed

__all__ = ["BLOCK", "DROP_NEWEST", "DROP_OLDEST", "Flow", "Policy", "Stream", "StreamClosed", "merge"]
