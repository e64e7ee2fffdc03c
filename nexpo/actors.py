"""Actors on asyncio: ``Actor``, ``ActorSystem``, ``ActorRef``.

    async with ActorSystem() as system:
        counter = system.spawn(Counter, name="counter")
        counter.tell("inc")                 # never blocks; MailboxFull when full
        await counter.send("inc")           # waits for room (backpressure)
        total = await counter.ask("get")    # the reply, or the exception receive raised

Failures are never silent: an exception while handling a tell is logged, counted
(``nexpo_actor_failures_total``) and handed to the supervisor, which restarts the actor; an
exception while handling an ask is raised in the asker. Messages to stopped actors become dead
letters (``system.dead_letters``). See ``nexpo.supervision`` for supervision trees.
"""

from __future__ import annotations

from nexpo._actors.actor import Actor
from nexpo._actors.messages import DeadLetter, Terminated
from nexpo._actors.ref import ActorRef
from nexpo._actors.system import ActorSystem
from nexpo._actors.timers import Timer
from nexpo.errors import ActorDeadlock, ActorStopped, MailboxFull, PendingLimitExceeded

__all__ = [
    "Actor",
    "ActorDeadlock",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "DeadLetter",
    "MailboxFull",
    "PendingLimitExceeded",
    "Terminated",
    "Timer",
]
