# Peer for proxy.lua: N GETs through an HTTP proxy with aiohttp (ClientSession.get's proxy=
# argument), at most LIMIT in flight, one ClientSession and TCPConnector(limit=LIMIT).
"""usage: python3 proxy_aiohttp.py N LIMIT PROXY URL

Prints "ok=<n> failed=<n> status_200=<n> body_bytes=<n> elapsed=<s> rps=<requests/s>".
"""
import asyncio
import collections
import sys
import time

from aiohttp import ClientSession, TCPConnector


async def main(n, limit, proxy, url):
    statuses = collections.Counter()
    errors = collections.Counter()
    body_bytes = 0
    left = n

    async with ClientSession(connector=TCPConnector(limit=limit)) as session:
        async def worker():
            nonlocal left, body_bytes
            while left > 0:
                left -= 1
                try:
                    async with session.get(url, proxy=proxy) as response:
                        body = await response.read()
                        statuses[response.status] += 1
                        body_bytes += len(body)
                except Exception as e:  # counted, like sluice's failed rows
                    errors[type(e).__name__] += 1

        await asyncio.gather(*(worker() for _ in range(limit)))
    return statuses, errors, body_bytes


if __name__ == "__main__":
    n, limit, proxy, url = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    t0 = time.perf_counter()
    statuses, errors, body_bytes = asyncio.run(main(n, limit, proxy, url))
    elapsed = time.perf_counter() - t0
    ok = sum(statuses.values())
    words = [f"ok={ok}", f"failed={sum(errors.values())}"]
    words += [f"status_{s}={c}" for s, c in sorted(statuses.items())]
    words += [f"error_{e}={c}" for e, c in sorted(errors.items())]
    words += [f"body_bytes={body_bytes}", f"elapsed={elapsed:.3f}", f"rps={n / elapsed:.0f}"]
    print(" ".join(words))
