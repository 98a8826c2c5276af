#!/usr/bin/env python3
"""A TCP proxy that adds latency: the benchmarks' stand-in for `tc netem`.

  delay_proxy.py --listen PORT --to PORT --delay-ms MS [--port-file FILE]

Listens on 127.0.0.1:LISTEN (0 = any free port; the port is written to
--port-file once listening) and forwards every connection to 127.0.0.1:TO.
Every chunk read from either side is written to the other side MS/2 ms after
it was read, in order, so a request and its answer take MS ms more than
without the proxy (MS is the added round-trip time). Throughput is not
capped: chunks are read as fast as they come and wait in memory (up to
16 MiB per direction, then reading pauses until the delayed writes catch up). An EOF is
forwarded after the same delay; a connection is closed when both directions
ended or either side reset. Runs until SIGTERM/SIGINT.

How this differs from netem on the loopback link: the delay applies to the
chunks the proxy receives (one read, often several TCP segments at once),
not to each packet; the TCP handshake to the proxy and the TCP
acknowledgements of each leg are not delayed, so TCP's window never limits a
transfer to window/RTT as it would on a real long link; and the proxy's own
CPU (Python) runs on the same cores as everything else. What it does model
is what the benchmarks are about: every protocol round trip (SSH key
exchange, authentication, channel open, a remote command and its answer,
rsync's file-list exchange) costs MS ms more.
"""

import argparse
import asyncio
import collections
import os
import signal
import sys

# Bytes waiting per direction before reading from the source pauses: no cap
# below 16 MiB per half round trip (640 MB/s at 50 ms).
MAX_QUEUED = 16 * 1024 * 1024


class Direction:
    """One direction of a connection: chunks from a source transport written to
    a destination transport `delay` seconds after they arrived, in order."""

    def __init__(self, pair, loop, delay):
        self.pair = pair
        self.loop = loop
        self.delay = delay
        self.source = None  # transport read from
        self.dest = None  # transport written to
        self.queue = collections.deque()  # (due, bytes or None for EOF)
        self.queued = 0
        self.timer = None
        self.dest_paused = False

    def push(self, data):
        self.queue.append((self.loop.time() + self.delay, data))
        if data:
            self.queued += len(data)
            if self.queued > MAX_QUEUED:
                self.source.pause_reading()
        if self.timer is None:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)

    def flush(self):
        self.timer = None
        if self.dest is None:  # the upstream connection is not there yet
            self.timer = self.loop.call_later(0.001, self.flush)
            return
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now:
            _, data = self.queue.popleft()
            if self.dest.is_closing():
                self.queue.clear()
                return
            if data is None:
                self.dest.write_eof()
                self.pair.eof_delivered()
                continue
            self.queued -= len(data)
            self.dest.write(data)
        if self.queued <= MAX_QUEUED // 2 and not self.dest_paused and self.source:
            self.source.resume_reading()
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)

    def cancel(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()


class Side(asyncio.Protocol):
    """One TCP connection of a proxied pair (the client's or the upstream's)."""

    def __init__(self, pair, incoming, outgoing):
        self.pair = pair
        self.incoming = incoming  # Direction this side feeds
        self.outgoing = outgoing  # Direction that writes to this side
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.incoming.source = transport
        self.outgoing.dest = transport

    def data_received(self, data):
        self.incoming.push(data)

    def eof_received(self):
        self.incoming.push(None)
        return True  # keep the transport open for the other direction

    def pause_writing(self):
        self.outgoing.dest_paused = True
        if self.outgoing.source:
            self.outgoing.source.pause_reading()

    def resume_writing(self):
        self.outgoing.dest_paused = False
        if self.outgoing.source and self.outgoing.queued <= MAX_QUEUED // 2:
            self.outgoing.source.resume_reading()

    def connection_lost(self, exc):
        self.pair.lost(self, exc)


class Pair:
    def __init__(self, loop, delay):
        self.loop = loop
        self.delay = delay
        self.up = Direction(self, loop, delay)  # client -> upstream
        self.down = Direction(self, loop, delay)  # upstream -> client
        self.client = Side(self, self.up, self.down)
        self.upstream = Side(self, self.down, self.up)
        self.eofs = 0

    def close_both(self):
        for side in (self.client, self.upstream):
            if side.transport is not None and not side.transport.is_closing():
                side.transport.close()  # after its write buffer is sent

    def eof_delivered(self):
        # Both directions ended: the connection is over.
        self.eofs += 1
        if self.eofs == 2:
            self.close_both()

    def lost(self, side, exc):
        other = self.upstream if side is self.client else self.client
        if other.transport is None or other.transport.is_closing():
            return
        if exc is not None:  # a reset: pass it on at once
            self.up.cancel()
            self.down.cancel()
            other.transport.abort()
        else:  # closed: what it sent is queued; close after that
            self.loop.call_later(self.delay + 0.01, self.close_both)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", type=int, default=0)
    ap.add_argument("--to", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    delay = args.delay_ms / 2000.0  # one way: half the added round trip
    loop = asyncio.get_running_loop()

    def accept():
        pair = Pair(loop, delay)

        async def connect_upstream():
            try:
                await loop.create_connection(lambda: pair.upstream, "127.0.0.1", args.to)
            except OSError:
                if pair.client.transport is not None:
                    pair.client.transport.abort()

        # Bytes from the client wait in pair.up until the upstream exists
        # (flush() drops nothing: dest is set before the first due time).
        pair.client_task = loop.create_task(connect_upstream())
        return pair.client

    server = await loop.create_server(accept, "127.0.0.1", args.listen)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
