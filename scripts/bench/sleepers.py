# Peer for sleepers.lua: N asyncio tasks asleep at once (each asyncio.sleep(1), returns 1),
# gathered; run.sh compares peak RSS with N=0 to get bytes per sleeping task.
"""usage: python3 sleepers.py [N=100000] [SECONDS=1]

Prints "sum=<N> elapsed=<seconds>".
"""
import asyncio
import sys
import time


async def sleeper(seconds):
    await asyncio.sleep(seconds)
    return 1


async def main(n, seconds):
    return sum(await asyncio.gather(*[sleeper(seconds) for _ in range(n)]))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    t0 = time.perf_counter()
    s = asyncio.run(main(n, seconds))
    print(f"sum={s} elapsed={time.perf_counter() - t0:.3f}")
