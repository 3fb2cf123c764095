# The seeds' test server ("Making 100 million requests with Python aiohttp"): answers
# "Hello, World!" to GET /{name} after a random delay of 0..MAX_DELAY whole seconds.
"""usage: python3 http_delay_server.py [PORT=8080] [MAX_DELAY=3] [SEED]

Prints "listening on http://127.0.0.1:PORT" once it accepts connections (PORT 0 picks a
free port and prints it) and serves until SIGINT or SIGTERM. As in the seed, the delay is
random.randint(0, MAX_DELAY) seconds. With SEED, the delays come from a seeded generator,
so a fresh server given the same seed hands out the same multiset of delays to the first
N requests: two clients measured against fresh servers then wait the same total time, and
their wall times differ only by how well they keep LIMIT requests in flight.
The listen backlog is raised from aiohttp's 128 so that a client opening 1,000 connections
at once is not slowed by SYN retransmissions.
"""
import asyncio
import random
import signal
import sys

from aiohttp import web


async def main(port, max_delay, seed):
    rng = random.Random(seed)

    async def handle(request):
        await asyncio.sleep(rng.randint(0, max_delay))
        return web.Response(text="Hello, World!")

    app = web.Application()
    app.router.add_get("/{name}", handle)
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    max_delay = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else None
    asyncio.run(main(port, max_delay, seed))
