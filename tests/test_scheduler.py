"""The batcher's fair queue: options that only change what is returned share batches, no option
group and no caller starves another, a caller's share and the number of option groups are
bounded."""

from __future__ import annotations

import asyncio
import math
import threading
from dataclasses import replace

import pytest

from s2s.inference.search import SearchOptions
from s2s.inference.translator import TranslateOptions
from service.errors import CallerQueueFull, QueueFull
from service.serving.batcher import CONTINUED, FILE_PART, NEW, Admission, Batcher
from service.serving.metrics import Metrics
from service.serving.offered import FileDensity, OfferedRate
from service.serving.torch_worker import TorchWorker
from tests.service_fixtures import FakeTranslator, wait_until

PLAIN = TranslateOptions(search=SearchOptions(beam_size=2))
ATTENTION = replace(PLAIN, search=replace(PLAIN.search, return_attention=True))
OTHER_BEAM = TranslateOptions(search=SearchOptions(beam_size=3))


def make_batcher(translator, **values) -> Batcher:
    knobs = dict(max_tokens=1000, max_sentences=4, max_wait_s=0.01, max_delay_s=0.02,
                 capacity=100, express_sentences=2)
    return Batcher("xx-yy", translator, TorchWorker(), **{**knobs, **values}, metrics=Metrics())


def submit(batcher: Batcher, texts: list[str], options=PLAIN, caller: str = "a"):
    return batcher.submit(batcher.translator.prepare(texts), options, caller)


def plain_and_other(other: str, options: TranslateOptions):
    """A plain request of caller a and one with ``options`` of caller b, sent together: the
    fake translator and both results."""
    fake = FakeTranslator()

    async def main():
        batcher = make_batcher(fake, max_wait_s=0.05, max_delay_s=0.05)
        batcher.start()
        futures = submit(batcher, ["plain"]) + submit(batcher, [other], options, "b")
        results = await asyncio.gather(*futures)
        await batcher.close()
        return results

    plain, result = asyncio.run(main())
    return fake, plain, result


def test_attention_requests_share_batches_with_plain_ones():
    fake, plain, html = plain_and_other("html", ATTENTION)
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
    two = replace(PLAIN, search=replace(PLAIN.search, n_best=2))
    fake, plain, alts = plain_and_other("alts", two)
    assert fake.batches == [["plain", "alts"]]
    assert len(plain.alternatives) == 1 and len(alts.alternatives) == 2


def with_backlog(fake, gate, probe, queued_count: int = 30, warmed=None, **knobs):
    """A rate of about 40 sentences/s measured on a full batch (then ``warmed(batcher)``, if
    given), one batch held, ``queued_count`` sentences of caller y queued (30: about 0.75 s of
    work) under max_queue_wait_s=0.5; then ``probe(batcher)`` -> (its result, futures to wait
    for), whose result is returned."""

    async def main():
        batcher = make_batcher(fake, max_queue_wait_s=0.5, max_sentences=2, **knobs)
        batcher.start()
        gate.set()
        await asyncio.gather(*submit(batcher, ["warm0", "warm1"]))   # a rate: about 40/s
        if warmed is not None:
            warmed(batcher)
        gate.clear()
        held = submit(batcher, ["hold"], caller="x")
        await wait_until(lambda: len(fake.calls) == 2)
        queued = submit(batcher, [f"s{i}" for i in range(queued_count)], caller="y")
        result, done = probe(batcher)
        gate.set()
        await asyncio.gather(*held, *queued, *done)
        await batcher.close()
        return result

    return asyncio.run(main())


def held_backlog(fake, gate, *, late: list[str], admission: Admission = NEW, **knobs):
    """with_backlog, then ``late`` from caller z: the error its submit raised, or None."""

    def probe(batcher):
        try:
            return None, batcher.submit(batcher.translator.prepare(late), PLAIN, "z", admission)
        except QueueFull as refused:
            return refused, []

    return with_backlog(fake, gate, probe, **knobs)


def test_a_request_the_backlog_would_delay_too_long_is_refused_at_once():
    """30 sentences behind 30 queued ones (turns by request: all 30 of them first) would
    wait about 0.75 s: 503 with Retry-After at once, not an answer that comes too late."""
    gate = threading.Event()
    error = held_backlog(FakeTranslator(gate=gate, delay=0.05), gate,
                         late=[f"late{i}" for i in range(30)])
    assert isinstance(error, QueueFull) and "max_queue_wait_s" in str(error)
    assert error.status == 503 and int(error.headers["Retry-After"]) >= 1


def test_a_single_sentence_is_admitted_beside_the_same_backlog():
    """The same backlog delays a one-sentence request by one sentence of each request ahead."""
    gate = threading.Event()
    assert held_backlog(FakeTranslator(gate=gate, delay=0.05), gate, late=["late"]) is None


def test_the_next_part_of_an_admitted_request_is_not_refused_by_the_wait():
    """A file's second chunk is queued however long the wait: the file was admitted."""
    gate = threading.Event()
    assert held_backlog(FakeTranslator(gate=gate, delay=0.05), gate,
                        late=[f"late{i}" for i in range(30)], admission=CONTINUED) is None


def test_a_file_is_checked_whole_before_its_first_chunk():
    """check_wait with a file's whole count refuses what its first chunk alone would pass."""
    gate = threading.Event()

    def probe(batcher):
        outcomes = []
        for count in (2, 30):
            try:
                batcher.check_wait("z", count, express=False)
                outcomes.append(None)
            except QueueFull as refused:
                outcomes.append(refused.status)
        return outcomes, []

    assert with_backlog(FakeTranslator(gate=gate, delay=0.05), gate, probe) == [None, 503]


def started_long_ago():
    """A clock that started at 0 and reads 1,000 s from then on (no time passes meanwhile)."""
    readings = iter([0.0])
    return lambda: next(readings, 1_000.0)


def file_outcomes_beside_a_small_queue(offered: int) -> tuple[int | None, list[int | None]]:
    """A 30-sentence file checked with nothing queued, then beside two queued sentences (plain
    and file rule), ``offered`` sentences having asked for the queue before (rate: 40/s)."""
    gate = threading.Event()
    alone: list[int | None] = []

    def outcome(batcher, whole):
        try:
            batcher.check_wait("z", 30, express=False, whole=whole)
        except QueueFull as refused:
            return refused.status
        return None

    def warmed(batcher):
        batcher.offered = OfferedRate(window_s=10.0, clock=started_long_ago())
        batcher.offered.add(offered)
        alone.append(outcome(batcher, whole=True))

    def probe(batcher):
        return (alone[0], [outcome(batcher, whole=False), outcome(batcher, whole=True)]), []

    return with_backlog(FakeTranslator(gate=gate, delay=0.05), gate, probe, queued_count=2,
                        warmed=warmed)


def test_under_overload_a_file_counts_its_own_sentences_unless_it_is_alone():
    """Offered faster than the model sustains, a file is refused when the queue ahead plus its
    own sentences exceed the limit (the queue alone passes a plain request), never alone."""
    assert file_outcomes_beside_a_small_queue(offered=2_000) == (None, [None, 503])


def test_a_burst_without_overload_refuses_no_file_for_its_own_size():
    """Offered below the model's rate, a short queue ahead does not refuse a file, however
    long the file itself takes."""
    assert file_outcomes_beside_a_small_queue(offered=0) == (None, [None, None])


def test_small_batches_of_a_just_started_server_do_not_make_it_overloaded():
    """Until a batch at least half full has run, the rate of small batches (less than a
    backlog gets) is no ground for judging overload, so a file counts only the queue ahead."""
    fake = FakeTranslator(delay=0.05)

    async def main():
        batcher = make_batcher(fake, max_queue_wait_s=0.5, max_sentences=2)
        batcher.start()
        await asyncio.gather(*submit(batcher, ["small"]))         # one small batch: 20/s
        batcher.offered.add(2_000)                                # offered: about 200/s
        reservation = batcher.admit_file("a", 30)   # its rest counts ahead under overload
        before = batcher.expected_wait_s("b", 1, express=False, whole=True)
        await asyncio.gather(*submit(batcher, ["full0", "full1"]))
        after = batcher.expected_wait_s("b", 1, express=False, whole=True)
        reservation.close()
        await batcher.close()
        return before, after

    before, after = asyncio.run(main())
    assert before == 0.0 and after > 0.5


def test_the_file_density_follows_recent_files():
    density = FileDensity(weight=0.5)
    density.add(10, 1_000)
    first = density.per_byte
    density.add(30, 1_000)
    assert first == 0.01 and abs(density.per_byte - 0.02) < 1e-12


def test_the_offered_rate_decays_with_time():
    now = [0.0]
    offered = OfferedRate(window_s=10.0, clock=lambda: now[0])
    now[0] = 100.0
    offered.add(100)
    before = offered.per_second
    now[0] = 110.0
    assert abs(before - 10.0) < 1e-3 and abs(offered.per_second - 10.0 / math.e) < 1e-3


def test_the_offered_rate_of_a_just_started_model_spans_half_a_window():
    """Sentences offered in the first moments count as spread over at least half a window:
    a single early file is not taken for overload, and the estimate is a rate from there."""
    now = [0.0]
    offered = OfferedRate(window_s=10.0, clock=lambda: now[0])
    now[0] = 0.1
    offered.add(250)
    early = offered.per_second
    assert abs(early - 250 / (10.0 * (1 - math.exp(-0.5)))) < 1e-6 and early < 70


def test_an_admitted_files_unqueued_sentences_count_ahead_of_the_next_file():
    """A file's chunks are queued one at a time; under overload the rest of an admitted file
    still counts ahead of a file admitted after it, until it is queued or the file ends."""
    fake = FakeTranslator(delay=0.05)

    def refused(batcher):
        try:
            batcher.check_wait("b", 1, express=False, whole=True)
        except QueueFull:
            return True
        return False

    async def main():
        batcher = make_batcher(fake, max_queue_wait_s=0.5, max_sentences=2)
        batcher.start()
        await asyncio.gather(*submit(batcher, ["warm0", "warm1"]))   # a full batch: about 40/s
        batcher.offered.add(2_000)                                   # offered: about 200/s
        first = batcher.admit_file("a", 30)
        outcomes = [refused(batcher)]
        first.queued(10)
        outcomes.append(batcher.reserved)
        first.close()
        outcomes += [batcher.reserved, refused(batcher)]
        await batcher.close()
        return outcomes

    assert asyncio.run(main()) == [True, 20, 0, False]


def test_delay_ahead_counts_others_requests_up_to_its_size_and_all_its_own():
    batcher = make_batcher(FakeTranslator())

    async def main():
        submit(batcher, [f"file{i}" for i in range(50)], caller="a")
        submit(batcher, ["one", "two"], caller="a")
        submit(batcher, [f"b{i}" for i in range(5)], caller="b")
        return ([batcher.queue.delay_ahead("a", n) for n in (1, 2, 10, 100)],
                [batcher.queue.delay_ahead("c", n) for n in (1, 2, 10, 100)],
                [batcher.queue.delay_ahead("a", n, express=True) for n in (1, 2)])

    own, other, express = asyncio.run(main())
    assert own == [53, 54, 57, 57]       # all of a's own (they came first), b's turns
    assert express == [2, 2]             # a small request: only the small ones ahead
    assert other == [3, 6, 17, 57]       # every request's turns up to its size


def test_a_callers_single_sentence_runs_beside_its_own_files_batch():
    """A caller's requests are served in order, but its small request does not wait for its
    own file's batch: it runs in the express lane beside it."""
    started = run_beside(FakeTranslator(delay=0.01, steps=60),
                                        [f"file{i}" for i in range(12)], caller="a")
    assert started == 2


def test_a_callers_requests_are_served_in_the_order_they_came():
    batches = batches_behind_a_held_one(lambda batcher: [
        *submit(batcher, [f"old{i}" for i in range(6)], caller="a"),
        *submit(batcher, [f"new{i}" for i in range(2)], caller="a")])
    assert batches == [[f"old{i}" for i in range(4)], ["old4", "old5", "new0", "new1"]]


def test_an_admitted_files_next_chunk_keeps_the_files_turn():
    """A file's chunks are queued one at a time; the next one goes before a request that
    arrived while the previous one ran, not behind it (the file was admitted first)."""
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)

    async def main():
        batcher = make_batcher(fake, express_sentences=0)   # one lane: the order alone
        batcher.start()
        reservation = batcher.admit_file("a", 8)
        part = replace(FILE_PART, place=reservation.place)
        chunks = [batcher.submit(fake.prepare([f"f{i}" for i in range(4)]), PLAIN, "a", part)]
        await wait_until(lambda: len(fake.calls) == 1)      # the first chunk runs
        later = submit(batcher, [f"late{i}" for i in range(4)], caller="a")
        chunks.append(batcher.submit(fake.prepare([f"f{i}" for i in range(4, 8)]), PLAIN,
                                     "a", part))
        gate.set()
        await asyncio.gather(*chunks[0], *chunks[1], *later)
        await batcher.close()

    asyncio.run(main())
    assert fake.batches[1] == [f"f{i}" for i in range(4, 8)]


def submit_file(batcher: Batcher, caller: str, texts: list[str]):
    """An admitted file of ``caller`` queued as one chunk."""
    reservation = batcher.admit_file(caller, len(texts))
    part = replace(FILE_PART, place=reservation.place)
    return batcher.submit(batcher.translator.prepare(texts), PLAIN, caller, part)


def batches_behind_a_held_one(queue_up) -> list[list[str]]:
    """The batches after a held one-sentence batch, with ``queue_up(batcher)`` queued while it
    ran (one lane, batches of 4)."""
    gate = threading.Event()
    fake = FakeTranslator(gate=gate)

    async def main():
        batcher = make_batcher(fake, express_sentences=0)   # one lane: the order alone
        batcher.start()
        first = submit(batcher, ["hold"], caller="h")
        await wait_until(lambda: len(fake.calls) == 1)
        queued = queue_up(batcher)
        gate.set()
        await asyncio.gather(*first, *queued)
        await batcher.close()

    asyncio.run(main())
    return fake.batches[1:]


def test_files_of_different_callers_are_served_in_the_order_they_were_admitted():
    batches = batches_behind_a_held_one(lambda batcher: [
        *submit_file(batcher, "a", [f"a{i}" for i in range(6)]),
        *submit_file(batcher, "b", [f"b{i}" for i in range(6)])])
    assert batches == [["a0", "a1", "a2", "a3"], ["a4", "a5", "b0", "b1"],
                       ["b2", "b3", "b4", "b5"]]


def test_another_callers_request_keeps_its_turn_beside_a_file():
    batches = batches_behind_a_held_one(lambda batcher: [
        *submit_file(batcher, "a", [f"a{i}" for i in range(6)]),
        *submit(batcher, [f"c{i}" for i in range(3)], caller="c")])
    assert batches[0] == ["a0", "c0", "a1", "c1"]


def test_a_file_counts_every_queued_file_ahead_of_it_whole():
    batcher = make_batcher(FakeTranslator())

    async def main():
        submit_file(batcher, "a", [f"a{i}" for i in range(50)])
        submit(batcher, [f"b{i}" for i in range(5)], caller="b")
        return (batcher.queue.delay_ahead("c", 2, file=True),
                batcher.queue.delay_ahead("c", 2))

    assert asyncio.run(main()) == (52, 4)   # a's file whole, b's turns; a request: turns only


def run_beside(fake, first: list[str], express_sentences: int = 2, caller: str = "b",
               admission: Admission = NEW) -> int:
    """``first`` runs (a batch of slow steps); then one sentence arrives. How many batches
    had started by the time the first batch finished (2: the sentence ran beside it), however
    slowly a loaded machine runs them."""

    async def main():
        batcher = make_batcher(fake, express_sentences=express_sentences)
        batcher.start()
        running = submit(batcher, first)
        started_by_then: list[int] = []
        running[0].add_done_callback(lambda _: started_by_then.append(len(fake.calls)))
        await wait_until(lambda: len(fake.calls) == 1)
        late = batcher.submit(batcher.translator.prepare(["small"]), PLAIN, caller, admission)
        await asyncio.gather(*running, *late)
        await batcher.close()
        return started_by_then[0]

    return asyncio.run(main())


def test_a_small_request_runs_beside_a_long_batch_of_a_large_one():
    started = run_beside(FakeTranslator(delay=0.01, steps=60),
                                        [f"file{i}" for i in range(4)])
    assert started == 2


def test_batches_of_small_requests_run_one_at_a_time():
    started = run_beside(FakeTranslator(delay=0.01, steps=60), ["a", "b"])
    assert started == 1


def test_a_files_small_part_does_not_take_the_express_lane():
    """A file's last chunk of one sentence is batch work: it waits for the long batch."""
    started = run_beside(FakeTranslator(delay=0.01, steps=60),
                                        [f"file{i}" for i in range(4)], admission=FILE_PART)
    assert started == 1


def test_without_express_sentences_a_small_request_waits_for_the_long_batch():
    started = run_beside(FakeTranslator(delay=0.01, steps=60),
                                        [f"file{i}" for i in range(4)], express_sentences=0)
    assert started == 1
