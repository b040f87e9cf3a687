"""The dynamic batcher on its own: coalescing, limits, option groups, result routing, dropped
work, draining, CUDA out-of-memory splitting."""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch

from s2s.inference.interrupt import DecodingInterrupted, run_to_end
from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions
from service.errors import QueueFull
from service.serving.batcher import Batcher, steps_halving_on_oom
from service.serving.metrics import Metrics
from service.serving.torch_worker import TorchWorker
from tests.service_fixtures import FakeTranslator, wait_until

BEAM1 = TranslateOptions(search=SearchOptions(beam_size=1))
BEAM5 = TranslateOptions(search=SearchOptions(beam_size=5))


def make_batcher(translator, worker=None, **values) -> Batcher:
    knobs = dict(max_tokens=1000, max_sentences=64, max_wait_s=0.05, capacity=100)
    return Batcher("xx-yy", translator, worker or TorchWorker(), **{**knobs, **values},
                   metrics=Metrics())


def halving(fake: FakeTranslator, texts: list[str], on_split=None) -> list:
    sources = fake.prepare(texts)
    return run_to_end(steps_halving_on_oom(
        lambda indices: fake.translation_steps([sources[i] for i in indices], BEAM1),
        list(range(len(sources))), on_split))


def submit(batcher: Batcher, texts: list[str], options=BEAM1) -> list[asyncio.Future]:
    """Prepared by the batcher's current translator, as the service does."""
    return batcher.submit(batcher.translator.prepare(texts), options)


def test_concurrent_requests_share_one_batch():
    fake = FakeTranslator()

    async def main():
        batcher = make_batcher(fake, max_wait_s=0.1)
        batcher.start()
        requests = [asyncio.gather(*submit(batcher, [f"text {i}"])) for i in range(6)]
        results = await asyncio.gather(*requests)
        await batcher.close()
        return results

    results = asyncio.run(main())
    assert len(fake.batches) == 1 and sorted(fake.batches[0]) == [f"text {i}" for i in range(6)]
    assert [r[0].text for r in results] == [f"fake(text {i})" for i in range(6)]


def test_closed_loop_clients_merge_into_one_batch():
    """Half the clients start while the first batch runs; once the first batch is answered,
    its clients' next sentences join those queued meanwhile instead of forming a group of
    their own that alternates with the other half forever."""
    fake = FakeTranslator(delay=0.05)

    async def client(batcher, number, start):
        await asyncio.sleep(start)
        for step in range(4):
            await asyncio.gather(*submit(batcher, [f"c{number} s{step}"]))

    async def main():
        batcher = make_batcher(fake, max_wait_s=0.01)
        batcher.start()
        await asyncio.gather(*(client(batcher, n, 0.0 if n < 4 else 0.03) for n in range(8)))
        await batcher.close()

    asyncio.run(main())
    sizes = [len(b) for b in fake.batches]
    assert sizes[0] == 4 and sizes[1] == 8, sizes


def test_a_lone_client_is_not_held_up_once_its_wave_is_known():
    """The first sentence waits the quiet period (nothing is known about the load yet); after a
    batch of one with nothing queued meanwhile, the next sentence starts at once."""
    fake = FakeTranslator()

    async def main():
        batcher = make_batcher(fake, max_wait_s=0.5, max_delay_s=0.5)
        batcher.start()
        loop = asyncio.get_running_loop()
        waits = []
        for step in range(4):
            started = loop.time()
            await asyncio.gather(*submit(batcher, [f"s{step}"]))
            waits.append(loop.time() - started)
        await batcher.close()
        return waits

    waits = asyncio.run(main())
    assert waits[0] >= 0.45, waits
    assert max(waits[1:]) < 0.25, waits
    assert [len(b) for b in fake.batches] == [1, 1, 1, 1]


def test_a_batch_waits_while_sentences_keep_arriving_up_to_the_delay_cap():
    """Sentences 4 ms apart with a 10 ms quiet period share a batch; the cap (60 ms after the
    first) starts the batch even though they keep coming."""
    fake = FakeTranslator()

    async def main():
        batcher = make_batcher(fake, max_wait_s=0.01, max_delay_s=0.06)
        batcher.start()
        futures = []
        for i in range(30):
            futures += submit(batcher, [f"t{i}"])
            await asyncio.sleep(0.004)
        await asyncio.gather(*futures)
        await batcher.close()

    asyncio.run(main())
    sizes = [len(b) for b in fake.batches]
    assert sizes[0] > 5, sizes            # far more than the 10 ms quiet period alone gives
    assert sizes[0] < 25, sizes           # the cap started it before the trickle ended


def test_batches_respect_sentence_and_token_limits():
    fake = FakeTranslator()

    async def main(**limits):
        batcher = make_batcher(fake, **limits)
        batcher.start()
        await asyncio.gather(*submit(batcher, ["a b c d e"] * 10))
        await batcher.close()

    asyncio.run(main(max_sentences=4))
    assert [len(b) for b in fake.batches] == [4, 4, 2]
    fake.calls.clear()
    asyncio.run(main(max_tokens=12))     # 5 pieces each: 2 rows x 5 <= 12 < 3 rows x 5
    assert [len(b) for b in fake.batches] == [2] * 5


def test_different_options_never_share_a_batch():
    fake = FakeTranslator()

    async def main():
        batcher = make_batcher(fake)
        batcher.start()
        futures = []
        for i in range(8):
            futures += submit(batcher, [f"t{i}"], BEAM1 if i % 2 else BEAM5)
        await asyncio.gather(*futures)
        await batcher.close()

    asyncio.run(main())
    assert len(fake.calls) == 2
    for texts, options in fake.calls:
        beam = options.search.beam_size
        assert all((int(t[1:]) % 2 == 1) == (beam == 1) for t in texts)


def test_each_request_gets_its_own_results_in_order():
    fake = FakeTranslator(delay=0.001)

    async def request(batcher, number):
        await asyncio.sleep(0.001 * (number % 7))
        texts = [f"r{number} s{k}" for k in range(1 + number % 4)]
        results = await asyncio.gather(*submit(batcher, texts))
        return texts, [r.text for r in results]

    async def main():
        batcher = make_batcher(fake, max_sentences=8, max_wait_s=0.002, capacity=1000)
        batcher.start()
        answers = await asyncio.gather(*(request(batcher, n) for n in range(60)))
        await batcher.close()
        return answers

    for texts, translations in asyncio.run(main()):
        assert translations == [f"fake({t})" for t in texts]
    assert max(len(b) for b in fake.batches) > 1


def test_full_queue_refuses_the_whole_request():
    async def main():
        batcher = make_batcher(FakeTranslator(), capacity=4)   # worker not started
        submit(batcher, ["a", "b", "c"])
        with pytest.raises(QueueFull):
            submit(batcher, ["d", "e"])
        assert batcher.depth == 3
        submit(batcher, ["d"])
        assert batcher.depth == 4

    asyncio.run(main())


def test_cancelled_work_is_dropped_not_translated():
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)

    async def main():
        batcher = make_batcher(fake, max_sentences=1, max_wait_s=0)
        batcher.start()
        first = submit(batcher, ["first"])
        await wait_until(lambda: fake.calls)          # "first" is running, blocked by the gate
        dropped = submit(batcher, ["dropped one", "dropped two"])
        for future in dropped:
            future.cancel()
        await asyncio.sleep(0)                          # done callbacks run
        assert batcher.depth == 0
        gate.set()
        await asyncio.gather(*first)
        await asyncio.gather(*submit(batcher, ["after"]))
        await batcher.close()

    asyncio.run(main())
    assert fake.translated() == ["first", "after"]


def test_sentences_queued_before_a_reload_are_prepared_by_the_new_model():
    old, new = FakeTranslator("old"), FakeTranslator("new", max_src_len=1)

    async def main():
        batcher = make_batcher(old, max_wait_s=10)
        batcher.start()
        futures = submit(batcher, ["a", "b c"])        # prepared by the old model
        batcher.translator = new                        # a reload swaps the model
        await batcher.close()
        return futures

    short, long = asyncio.run(main())
    assert short.result().text == "new(a)"
    assert "at most 1" in str(long.exception())        # the new model's length limit
    assert old.calls == []


def test_close_finishes_queued_work():
    fake = FakeTranslator(delay=0.01)

    async def main():
        batcher = make_batcher(fake, max_sentences=2, max_wait_s=10)
        batcher.start()
        futures = submit(batcher, ["a", "b", "c"])
        await batcher.close()
        return [f.result().text for f in futures]

    assert asyncio.run(main()) == ["fake(a)", "fake(b)", "fake(c)"]


def test_out_of_memory_splits_the_batch_down_to_what_fits():
    fake = FakeTranslator(oom_above=2)
    texts = [f"s{i}" for i in range(8)]
    splits = []
    results = halving(fake, texts, lambda: splits.append(1))
    assert [r.text for r in results] == [f"fake({t})" for t in texts]
    assert [len(b) for b in fake.batches] == [8, 4, 2, 2, 4, 2, 2]
    assert len(splits) == 3


def test_out_of_memory_on_a_single_sentence_fails_only_that_sentence():
    fake = FakeTranslator(oom_above=0)
    results = halving(fake, ["a", "b"])
    assert all(isinstance(r, torch.cuda.OutOfMemoryError) for r in results)


def test_batcher_recovers_from_out_of_memory():
    fake = FakeTranslator(oom_above=3)
    metrics = Metrics()

    async def main():
        batcher = Batcher("xx-yy", fake, TorchWorker(), max_tokens=1000, max_sentences=64,
                          max_wait_s=0.05, capacity=100, metrics=metrics)
        batcher.start()
        results = await asyncio.gather(*submit(batcher, [f"s{i}" for i in range(10)]))
        await batcher.close()
        return [r.text for r in results]

    assert asyncio.run(main()) == [f"fake(s{i})" for i in range(10)]
    assert metrics.oom_splits.labels("xx-yy")._value.get() > 0


def test_a_running_batch_drops_sentences_whose_requests_are_gone():
    fake = FakeTranslator(delay=0.01, steps=200)      # a batch of about two seconds

    async def main():
        batcher = make_batcher(fake, max_wait_s=0)
        batcher.start()
        kept, gone = submit(batcher, ["kept"]), submit(batcher, ["gone one", "gone two"])
        await wait_until(lambda: fake.calls)           # all three are in the running batch
        started = asyncio.get_running_loop().time()
        for future in gone:
            future.cancel()
        await asyncio.gather(*kept)
        await batcher.close()
        return asyncio.get_running_loop().time() - started

    asyncio.run(main())
    assert fake.steps_run == [1]                       # only "kept" was decoded to the end


def test_a_batch_nobody_waits_for_stops_early():
    fake = FakeTranslator(delay=0.01, steps=1000)     # ten seconds if it ran to the end

    async def main():
        batcher = make_batcher(fake, max_wait_s=0)
        batcher.start()
        futures = submit(batcher, ["a", "b"])
        await wait_until(lambda: fake.calls)
        started = asyncio.get_running_loop().time()
        for future in futures:
            future.cancel()
        await batcher.close()
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(main()) < 1.0


def test_a_batch_past_its_time_limit_fails_with_interrupted():
    fake = FakeTranslator(delay=0.01, steps=1000)

    async def main():
        batcher = make_batcher(fake, max_wait_s=0, max_batch_seconds=0.2)
        batcher.start()
        results = await asyncio.gather(*submit(batcher, ["a"]), return_exceptions=True)
        await batcher.close()
        return results

    (result,) = asyncio.run(main())
    assert isinstance(result, DecodingInterrupted)


def test_a_long_batch_of_one_pair_does_not_hold_up_another_pairs_short_one():
    slow, quick = FakeTranslator("slow", delay=0.01, steps=300), FakeTranslator("quick")
    worker = TorchWorker(slice_s=0.02)

    async def main():
        long_pair, short_pair = make_batcher(slow, worker, max_wait_s=0), make_batcher(
            quick, worker, max_wait_s=0)
        long_pair.start()
        short_pair.start()
        running = asyncio.gather(*submit(long_pair, ["long"]))
        await wait_until(lambda: slow.calls)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*submit(short_pair, ["short"]))
        waited = loop.time() - started
        await running
        await long_pair.close()
        await short_pair.close()
        return waited

    assert asyncio.run(main()) < 0.5                   # the long batch takes about 3 s
