# Peer for lac_1m.lua: N trivial jobs (sleep(0), return index) through the seeds' Python
# limited_as_completed, the callback form proposed for the stdlib (seed 002, bpo-30782).
"""usage: python3 lac_1m.py [N=1000000] [LIMIT=1000]

Prints "sum=<sum of 1..N> elapsed=<seconds>".

limited_as_completed follows the shape of the stdlib proposal: each running future gets a
done-callback that moves it to a `done` queue and starts the next coroutine from the lazy
source, so nothing busy-polls; the consumer awaits one `_wait_for_one()` per result.
"""
import asyncio
import sys
import time


def limited_as_completed(coros, limit):
    coros = iter(coros)
    done = asyncio.Queue()
    todo = set()

    def _start_next():
        try:
            c = next(coros)
        except StopIteration:
            return
        f = asyncio.ensure_future(c)
        todo.add(f)
        f.add_done_callback(_on_completion)

    def _on_completion(f):
        todo.remove(f)
        # Start the replacement before publishing the result, so that
        # len(todo) + done.qsize() always counts the results still to come.
        _start_next()
        done.put_nowait(f)

    async def _wait_for_one():
        f = await done.get()
        return f.result()

    for _ in range(limit):
        _start_next()
    while todo or not done.empty():
        yield _wait_for_one()


async def job(i):
    await asyncio.sleep(0)
    return i


async def main(n, limit):
    total = 0
    for res in limited_as_completed((job(i) for i in range(1, n + 1)), limit):
        total += await res
    return total


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    t0 = time.perf_counter()
    s = asyncio.run(main(n, limit))
    print(f"sum={s} elapsed={time.perf_counter() - t0:.3f}")
