# Peer for fetch_many.lua: the seeds' aiohttp client ("Making 100 million requests with
# Python aiohttp"): N GETs through limited_as_completed over a lazy generator of coroutines.
"""usage: python3 http_aiohttp.py N [LIMIT=1000] [URL=http://127.0.0.1:8080/{}]

Prints "ok=<n> failed=<n> status_200=<n> body_bytes=<n> elapsed=<s> rps=<requests/s>"
(plus "status_<code>=<n>" for other statuses and "error_<Name>=<n>" per exception type).
"{}" in URL is replaced by the request's index, as in the seed.

As in the seed: one ClientSession with TCPConnector(limit=LIMIT), `fetch` reads the whole
body. limited_as_completed is the callback form the seed's author proposed for the stdlib
(seed 002, bpo-30782) rather than the first post's busy-polling one, which spins the CPU
while it waits; it is the same function as lac_1m.py's. A failed request is counted by its
exception's class and does not end the run.
"""
import asyncio
import collections
import sys
import time

from aiohttp import ClientSession, TCPConnector


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
        _start_next()
        done.put_nowait(f)

    async def _wait_for_one():
        f = await done.get()
        return f.result()

    for _ in range(limit):
        _start_next()
    while todo or not done.empty():
        yield _wait_for_one()


async def fetch(url, session):
    async with session.get(url) as response:
        body = await response.read()
        return response.status, len(body)


async def main(n, limit, url):
    statuses = collections.Counter()
    errors = collections.Counter()
    body_bytes = 0
    async with ClientSession(connector=TCPConnector(limit=limit)) as session:
        coros = (fetch(url.format(i), session) for i in range(n))
        for res in limited_as_completed(coros, limit):
            try:
                status, size = await res
            except Exception as e:  # counted, like sluice's failed rows
                errors[type(e).__name__] += 1
                continue
            statuses[status] += 1
            body_bytes += size
    return statuses, errors, body_bytes


if __name__ == "__main__":
    n = int(sys.argv[1])
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    url = sys.argv[3] if len(sys.argv) > 3 else "http://127.0.0.1:8080/{}"
    t0 = time.perf_counter()
    statuses, errors, body_bytes = asyncio.run(main(n, limit, url))
    elapsed = time.perf_counter() - t0
    ok = sum(statuses.values())
    words = [f"ok={ok}", f"failed={sum(errors.values())}"]
    words += [f"status_{s}={c}" for s, c in sorted(statuses.items())]
    words += [f"error_{e}={c}" for e, c in sorted(errors.items())]
    words += [f"body_bytes={body_bytes}", f"elapsed={elapsed:.3f}", f"rps={n / elapsed:.0f}"]
    print(" ".join(words))
