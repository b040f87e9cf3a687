"""The batcher's fair queue: options that only change what is returned share batches, no option
group and no caller starves another, a caller's share and the number of option groups are
bounded."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest

from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions
from service.errors import CallerQueueFull, QueueFull
from service.serving.batcher import Batcher
from service.serving.metrics import Metrics
from service.serving.torch_worker import TorchWorker
from tests.service_fixtures import FakeTranslator, wait_until

PLAIN = TranslateOptions(search=SearchOptions(beam_size=2))
ATTENTION = replace(PLAIN, search=replace(PLAIN.search, return_attention=True))
OTHER_BEAM = TranslateOptions(search=SearchOptions(beam_size=3))


def make_batcher(translator, **values) -> Batcher:
    knobs = dict(max_tokens=1000, max_sentences=4, max_wait_s=0.01, max_delay_s=0.02,
                 capacity=100)
    return Batcher("xx-yy", translator, TorchWorker(), **{**knobs, **values}, metrics=Metrics())


def submit(batcher: Batcher, texts: list[str], options=PLAIN, caller: str = "a"):
    return batcher.submit(batcher.translator.prepare(texts), options, caller)


def test_attention_requests_share_batches_with_plain_ones():
    fake = FakeTranslator()

    async def main():
        batcher = make_batcher(fake, max_wait_s=0.05, max_delay_s=0.05)
        batcher.start()
        futures = submit(batcher, ["plain"]) + submit(batcher, ["html"], ATTENTION, "b")
        results = await asyncio.gather(*futures)
        await batcher.close()
        return results

    plain, html = asyncio.run(main())
    assert fake.batches == [["plain", "html"]]
    assert fake.calls[0][1].search.return_attention          # the batch computed the superset
    assert html.attention is not None
    assert plain.attention is None                           # but returned only what was asked
    assert all(c.attention is None for c in plain.alternatives)


def test_another_option_group_is_served_while_a_flood_keeps_its_group_full():
    """The flood's group is full at every decision; the other group's sentence still runs
    within its delay, not after the flood stops."""
    fake = FakeTranslator(delay=0.01)

    async def main():
        batcher = make_batcher(fake)
        batcher.start()
        stop = asyncio.Event()

        async def flood(caller: str):
            while not stop.is_set():
                await asyncio.gather(*submit(batcher, ["f"] * 8, caller=caller))

        flooders = [asyncio.create_task(flood(f"flood{i}")) for i in range(4)]
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*submit(batcher, ["other"], OTHER_BEAM, "c"))
        waited = asyncio.get_running_loop().time() - started
        stop.set()
        await asyncio.gather(*flooders)
        await batcher.close()
        return waited

    waited = asyncio.run(main())
    assert waited < 1.0, waited


def test_a_callers_single_sentence_joins_the_next_batch_before_anothers_backlog():
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)

    async def main():
        batcher = make_batcher(fake)
        batcher.start()
        first = submit(batcher, ["hold"], caller="big")
        await wait_until(lambda: len(fake.calls) == 1)        # the model is busy
        backlog = submit(batcher, [f"big{i}" for i in range(12)], caller="big")
        small = submit(batcher, ["small"], caller="small")
        gate.set()
        await asyncio.gather(*first, *backlog, *small)
        await batcher.close()

    asyncio.run(main())
    assert "small" in fake.batches[1]                          # not behind the 12 of "big"


def test_a_caller_over_its_share_gets_429_and_others_are_still_queued():
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)

    async def main():
        batcher = make_batcher(fake, capacity=10, caller_share=0.5)
        batcher.start()
        held = submit(batcher, ["hold"], caller="x")
        await wait_until(lambda: len(fake.calls) == 1)
        queued = submit(batcher, [f"s{i}" for i in range(5)], caller="greedy")
        with pytest.raises(CallerQueueFull) as refused:
            submit(batcher, ["one more"], caller="greedy")
        other = submit(batcher, ["fine"], caller="polite")
        gate.set()
        await asyncio.gather(*held, *queued, *other)
        await batcher.close()
        return refused.value

    error = asyncio.run(main())
    assert error.status == 429 and "Retry-After" in error.headers


def test_unique_options_per_request_are_bounded_in_groups():
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)

    async def main():
        batcher = make_batcher(fake, max_groups=3)
        batcher.start()
        held = submit(batcher, ["hold"])
        await wait_until(lambda: len(fake.calls) == 1)
        futures = []
        for penalty in (0.1, 0.2, 0.3):
            options = TranslateOptions(search=SearchOptions(beam_size=2,
                                                            length_penalty=penalty))
            futures += submit(batcher, ["x"], options, caller=str(penalty))
        with pytest.raises(QueueFull):
            submit(batcher, ["x"], TranslateOptions(search=SearchOptions(length_penalty=0.4)))
        gate.set()
        await asyncio.gather(*held, *futures)
        await batcher.close()

    asyncio.run(main())


def test_alternatives_requests_share_batches_and_get_their_own_candidates():
    fake = FakeTranslator()
    three = replace(PLAIN, search=replace(PLAIN.search, n_best=2))

    async def main():
        batcher = make_batcher(fake, max_wait_s=0.05, max_delay_s=0.05)
        batcher.start()
        futures = submit(batcher, ["plain"]) + submit(batcher, ["alts"], three, "b")
        results = await asyncio.gather(*futures)
        await batcher.close()
        return results

    plain, alts = asyncio.run(main())
    assert fake.batches == [["plain", "alts"]]
    assert len(plain.alternatives) == 1 and len(alts.alternatives) == 2


def test_work_beyond_the_queue_wait_limit_is_refused_at_once():
    """Once the recent rate is known, a queue holding more than max_queue_wait_s of work
    refuses new sentences (503) instead of queueing them into answers that come too late."""
    gate = threading.Event()
    fake = FakeTranslator(gate=gate, delay=0.05)

    async def main():
        batcher = make_batcher(fake, max_queue_wait_s=0.5)
        batcher.start()
        gate.set()
        await asyncio.gather(*submit(batcher, ["warm"]))          # a rate: about 20/s
        gate.clear()
        held = submit(batcher, ["hold"], caller="x")
        await wait_until(lambda: len(fake.calls) == 2)
        queued = submit(batcher, [f"s{i}" for i in range(30)], caller="y")   # ~1.5 s of work
        with pytest.raises(QueueFull, match="max_queue_wait_s"):
            submit(batcher, ["late"], caller="z")
        gate.set()
        await asyncio.gather(*held, *queued)
        await batcher.close()

    asyncio.run(main())
