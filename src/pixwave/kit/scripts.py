"""Several Lua scripts in one Redis round trip.

redis-py's pipeline, when it holds a registered script, asks ``SCRIPT EXISTS`` before every
execution: one more round trip each time, which undid half of what pipelining a batch's
leases and health samples saved. Here the scripts go by their sha in a plain pipeline. Only a
``NOSCRIPT`` answer (Redis restarted, or its scripts flushed) loads the scripts that got it and
sends those calls again; the calls that ran are never sent twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT


@dataclass(frozen=True, slots=True)
class Call:
    """One run of a registered script (``Redis.register_script``)."""

    script: AsyncScript
    keys: Sequence[KeyT]
    args: Sequence[EncodableT]


async def run_scripts(redis: Redis, calls: Sequence[Call]) -> list[Any]:
    """Each call's answer, in order; the first error any call met is raised (after all ran)."""
    answers: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in range(2):
        async with redis.pipeline(transaction=False) as pipe:
            for i in todo:
                call = calls[i]
                pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            results = await pipe.execute(raise_on_error=False)
        missing: list[int] = []
        for i, result in zip(todo, results, strict=True):
            answers[i] = result
            if isinstance(result, NoScriptError):
                missing.append(i)
        if not missing or attempt:
            break
        for script in {id(calls[i].script): calls[i].script for i in missing}.values():
            script.sha = await redis.script_load(script.script)
        todo = missing
    for answer in answers:
        if isinstance(answer, Exception):
            raise answer
    return answers
