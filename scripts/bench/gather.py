# Peer for gather.lua: asyncio.gather over N tasks created up front (each asyncio.sleep(0),
# then returns its index); the results are summed.
"""usage: python3 gather.py [N=100000]

Prints "sum=<sum of 1..N> ordered=<1 if results came in input order> elapsed=<seconds>".
"""
import asyncio
import sys
import time


async def job(i):
    await asyncio.sleep(0)
    return i


async def main(n):
    tasks = [asyncio.ensure_future(job(i)) for i in range(1, n + 1)]
    results = await asyncio.gather(*tasks)
    ordered = int(all(v == i for i, v in enumerate(results, 1)))
    return sum(results), ordered


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    t0 = time.perf_counter()
    s, ordered = asyncio.run(main(n))
    print(f"sum={s} ordered={ordered} elapsed={time.perf_counter() - t0:.3f}")
