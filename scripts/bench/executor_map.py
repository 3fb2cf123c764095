# Peer for executor_map.lua: a bounded executor map in asyncio (WORKERS tasks pulling from an
# asyncio.Queue(maxsize), input-order results through a bounded reorder buffer) over N jobs.
"""usage: python3 executor_map.py [N=1000000] [WORKERS=1000]

Each job sleeps 0 and returns x*2; the consumer sums. Prints "sum=<N*(N+1)> elapsed=<s>".

bounded_map is what a careful asyncio user writes for the seed-004 executor's map(): a
producer pulls the lazy iterable into a queue of WORKERS slots, WORKERS long-lived worker
tasks run the jobs, and a window of 2*WORKERS items (queued + running + finished but not
yet yielded) bounds the reorder buffer, so memory depends on WORKERS, never on N.
"""
import asyncio
import sys
import time


async def bounded_map(fn, iterable, max_workers, window=None):
    loop = asyncio.get_running_loop()
    window = window or 2 * max_workers
    queue = asyncio.Queue(maxsize=max_workers)
    slots = asyncio.Semaphore(window)
    buf = {}                 # index -> result, the reorder buffer
    state = {"want": 0, "total": None, "waiter": None}

    def wake():
        w = state["waiter"]
        if w is not None and not w.done():
            w.set_result(None)

    async def producer():
        n = 0
        for x in iterable:
            await slots.acquire()
            await queue.put((n, x))
            n += 1
        state["total"] = n
        for _ in range(max_workers):
            await queue.put(None)
        wake()

    async def worker():
        while True:
            item = await queue.get()
            if item is None:
                return
            i, x = item
            buf[i] = await fn(x)
            if i == state["want"]:
                wake()

    tasks = [asyncio.ensure_future(producer())]
    tasks += [asyncio.ensure_future(worker()) for _ in range(max_workers)]
    try:
        while True:
            want = state["want"]
            if want in buf:
                v = buf.pop(want)
                state["want"] = want + 1
                slots.release()
                yield v
            elif state["total"] is not None and want >= state["total"]:
                break
            else:
                state["waiter"] = loop.create_future()
                await state["waiter"]
                state["waiter"] = None
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()


async def job(x):
    await asyncio.sleep(0)
    return x * 2


async def main(n, workers):
    total = 0
    async for v in bounded_map(job, range(1, n + 1), workers):
        total += v
    return total


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    t0 = time.perf_counter()
    s = asyncio.run(main(n, workers))
    print(f"sum={s} elapsed={time.perf_counter() - t0:.3f}")
