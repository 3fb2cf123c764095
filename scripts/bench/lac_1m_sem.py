# Peer for lac_1m.lua: N trivial jobs (sleep(0), return index) with the seeds' semaphore
# client shape: one task per job created up front, a Semaphore(LIMIT), asyncio.gather.
"""usage: python3 lac_1m_sem.py [N=1000000] [LIMIT=1000]

Prints "sum=<sum of 1..N> elapsed=<seconds>". Memory grows with N, not LIMIT: this is the
form that the seeds' 100-million-request client was killed by the OOM killer for.
"""
import asyncio
import sys
import time


async def job(i):
    await asyncio.sleep(0)
    return i


async def bound(sem, i):
    async with sem:
        return await job(i)


async def main(n, limit):
    sem = asyncio.Semaphore(limit)
    results = await asyncio.gather(*[bound(sem, i) for i in range(1, n + 1)])
    return sum(results)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    t0 = time.perf_counter()
    s = asyncio.run(main(n, limit))
    print(f"sum={s} elapsed={time.perf_counter() - t0:.3f}")
