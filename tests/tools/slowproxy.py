#!/usr/bin/env python3
"""slowproxy.py - a TCP pass-through for tests that delays a random SHARE of the RESPONSES.

toxiproxy picks slow CONNECTIONS; a client that reuses connections then mostly talks on the
fast ones. This proxy decides per response instead: on each connection, an upstream read that
begins an HTTP/1.x response ("HTTP/" at its start) while nothing is held back on that
connection is delayed by --latency-ms with probability --share; every later read of that
connection waits behind it (bytes stay in order), without a delay of its own. Requests
(client -> upstream) are never delayed. One response per read start holds for HTTP/1.1
without pipelining (libcurl's default): the next response cannot start before its request.

HTTP/2 (a connection that opens with the client preface, e.g. gRPC with prior knowledge): every
call is a stream of one connection, so the proxy reads frames instead. The first frame upstream
sends on a stream draws: with probability --share every frame of that stream is held until
--latency-ms after it arrived, while the frames of other streams and of the connection (stream 0:
SETTINGS, PING, WINDOW_UPDATE, GOAWAY) pass at once. Holding one stream's HEADERS back while later
ones pass would break HPACK's shared dynamic table, so the proxy rewrites the client's SETTINGS
to SETTINGS_HEADER_TABLE_SIZE 0: upstream then encodes every header block without the table
(RFC 7541 4.2), and blocks may be delivered in any order. A header block split over CONTINUATION
frames is never interleaved with another frame.

  slowproxy.py --listen PORT --upstream HOST:PORT --share 0.3 --latency-ms 2500
               [--seed N] [--stats FILE] [--idle-timeout S]

The seed (random when not given) is printed at start: the same seed draws the same decisions
in the same order (which response gets which draw still depends on timing). --stats names a
JSON file written once listening, then every second and at exit: seed, share, latency_ms,
connections, h2_connections (of them HTTP/2), responses (seen; for HTTP/2, streams), delayed
(held back), chunks, delayed_bytes, cpu_s (its own CPU time), stopped (true in the last one).
SIGTERM or SIGINT: stop
accepting, close every connection, write the stats, exit 0. Every wait is bounded: a
connection idle (no byte either way) for --idle-timeout seconds (default 120) or whose peer
does not take bytes for as long is closed.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import time

STATS = {"connections": 0, "h2_connections": 0, "responses": 0, "delayed": 0, "chunks": 0,
         "delayed_bytes": 0, "stopped": False}
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_SETTINGS, H2_HEADERS, H2_CONTINUATION = 4, 1, 9
H2_ACK, H2_END_HEADERS = 0x1, 0x4
H2_HEADER_TABLE_SIZE = 1


def h2_frames(buf):
    """Complete frames at the start of buf: ([(type, flags, stream, frame bytes)], rest)."""
    out, off = [], 0
    while len(buf) - off >= 9:
        n = int.from_bytes(buf[off:off + 3], "big")
        if len(buf) - off < 9 + n:
            break
        ftype, flags = buf[off + 3], buf[off + 4]
        sid = int.from_bytes(buf[off + 5:off + 9], "big") & 0x7FFFFFFF
        out.append((ftype, flags, sid, bytes(buf[off:off + 9 + n])))
        off += 9 + n
    return out, buf[off:]


def h2_no_header_table(frame):
    """A client SETTINGS frame with SETTINGS_HEADER_TABLE_SIZE 0 (set, or added)."""
    body, found = bytearray(frame[9:]), False
    for i in range(0, len(body) - len(body) % 6, 6):
        if int.from_bytes(body[i:i + 2], "big") == H2_HEADER_TABLE_SIZE:
            body[i + 2:i + 6], found = b"\0\0\0\0", True
    if not found:
        body += H2_HEADER_TABLE_SIZE.to_bytes(2, "big") + b"\0\0\0\0"
    return len(body).to_bytes(3, "big") + frame[3:9] + bytes(body)


def write_stats(args):
    if not args.stats:
        return
    tmp = args.stats + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dict(STATS, seed=args.seed, share=args.share, latency_ms=args.latency_ms,
                       cpu_s=round(time.process_time(), 2)), f)
    os.replace(tmp, args.stats)


class Conn:
    """One client connection and its upstream: two pumps, a shared idle clock."""

    def __init__(self, args, rng):
        self.args, self.rng = args, rng
        self.idle = args.idle_timeout
        self.last = time.monotonic()  # last byte either way

    async def read(self, reader):
        """The next chunk (b"" at EOF); None once neither side sent a byte for self.idle s."""
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65536), 1)
            except asyncio.TimeoutError:
                if time.monotonic() - self.last >= self.idle:
                    return None
                continue
            self.last = time.monotonic()
            return data

    async def requests(self, creader, uwriter):
        """client -> upstream, never delayed; ends at the client's EOF."""
        while data := await self.read(creader):
            uwriter.write(data)
            await asyncio.wait_for(uwriter.drain(), self.idle)

    async def responses(self, ureader, cwriter):
        """upstream -> client: each read is queued with its due time; send() writes it then."""
        queue = asyncio.Queue()
        held_until = 0.0  # due time of the last delayed read: reads before it wait behind it

        async def send():
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                cwriter.write(data)
                await asyncio.wait_for(cwriter.drain(), self.idle)

        sender = asyncio.ensure_future(send())
        try:
            while data := await self.read(ureader):
                now = due = time.monotonic()
                STATS["chunks"] += 1
                if data.startswith(b"HTTP/"):
                    STATS["responses"] += 1
                    if held_until <= now and self.rng.random() < self.args.share:
                        STATS["delayed"] += 1
                        STATS["delayed_bytes"] += len(data)
                        held_until = due = now + self.args.latency_ms / 1000
                elif held_until > now:
                    STATS["delayed_bytes"] += len(data)
                queue.put_nowait((due, data))
                if sender.done():  # the client is gone: stop reading for it
                    break
            queue.put_nowait(None)
            # upstream closed: what is held back still goes out, then the connection ends
            await asyncio.wait_for(sender, self.args.latency_ms / 1000 + self.idle)
        finally:
            sender.cancel()


    async def h2_requests(self, creader, uwriter, first):
        """client -> upstream for HTTP/2 (first: the bytes read so far, preface included): every
        frame passes at once; the client's SETTINGS switch upstream's HPACK table off."""
        buf = bytearray(first[len(H2_PREFACE):])
        uwriter.write(H2_PREFACE)
        while True:
            frames, buf = h2_frames(buf)
            for ftype, flags, sid, frame in frames:
                if ftype == H2_SETTINGS and sid == 0 and not flags & H2_ACK:
                    frame = h2_no_header_table(frame)
                uwriter.write(frame)
            await asyncio.wait_for(uwriter.drain(), self.idle)
            data = await self.read(creader)
            if not data:
                return
            buf += data

    async def h2_responses(self, ureader, cwriter):
        """upstream -> client for HTTP/2: a stream drawn slow has its frames held until due."""
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()
        held = {}         # stream -> frames held back (in order)
        seen = set()      # streams drawn already
        in_block = False  # a header block begun on the wire and not ended: nothing may cut in

        def put(ftype, flags, frame):
            nonlocal in_block
            if ftype in (H2_HEADERS, H2_CONTINUATION):
                in_block = not flags & H2_END_HEADERS
            queue.put_nowait(frame)

        def release(sid):
            if in_block:  # after the block in progress
                loop.call_later(0.005, release, sid)
                return
            for ftype, flags, frame in held.pop(sid):
                put(ftype, flags, frame)

        async def send():
            while (data := await queue.get()) is not None:
                cwriter.write(data)
                await asyncio.wait_for(cwriter.drain(), self.idle)

        sender = asyncio.ensure_future(send())
        buf = bytearray()
        try:
            while data := await self.read(ureader):
                STATS["chunks"] += 1
                buf += data
                frames, buf = h2_frames(buf)
                for ftype, flags, sid, frame in frames:
                    if sid and sid not in seen:
                        seen.add(sid)
                        STATS["responses"] += 1
                        if self.rng.random() < self.args.share:
                            STATS["delayed"] += 1
                            held[sid] = []
                            loop.call_later(self.args.latency_ms / 1000, release, sid)
                    if sid in held:
                        STATS["delayed_bytes"] += len(frame)
                        held[sid].append((ftype, flags, frame))
                    else:
                        put(ftype, flags, frame)
                if sender.done():
                    break
            # upstream closed: what is held back still goes out when due, then the end
            end = time.monotonic() + self.args.latency_ms / 1000 + 1
            while held and time.monotonic() < end and not sender.done():
                await asyncio.sleep(0.05)
            queue.put_nowait(None)
            await asyncio.wait_for(sender, self.idle)
        finally:
            sender.cancel()

    async def run(self, creader, cwriter):
        uwriter, pumps = None, []
        try:
            host, port = self.args.upstream.rsplit(":", 1)
            first = b""  # HTTP/2 or not: the client's first bytes tell (it speaks first)
            while len(first) < len(H2_PREFACE) and H2_PREFACE.startswith(first):
                data = await self.read(creader)
                if not data:
                    return
                first += data
            ureader, uwriter = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
            if first.startswith(H2_PREFACE):
                STATS["h2_connections"] += 1
                pumps = [asyncio.ensure_future(self.h2_requests(creader, uwriter, first)),
                         asyncio.ensure_future(self.h2_responses(ureader, cwriter))]
            else:
                uwriter.write(first)
                pumps = [asyncio.ensure_future(self.requests(creader, uwriter)),
                         asyncio.ensure_future(self.responses(ureader, cwriter))]
            # either side closing ends the connection: the client's EOF at once (an answer held
            # for it is dropped), upstream's once what is held back has been sent
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.TimeoutError):
            pass  # upstream refused or slow to accept: the client sees the connection close
        finally:
            for t in pumps:
                t.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)  # a reset just ends it
            for w in (cwriter, uwriter):
                if w is not None:
                    w.close()


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1")
    p.add_argument("--upstream", required=True, help="host:port")
    p.add_argument("--share", type=float, required=True, help="0..1 of the responses")
    p.add_argument("--latency-ms", type=int, required=True)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--stats", default=None, help="JSON counters, rewritten every second")
    p.add_argument("--idle-timeout", type=float, default=120)
    args = p.parse_args()
    if not 0 <= args.share <= 1 or args.latency_ms < 0:
        p.error("--share must be within 0..1 and --latency-ms >= 0")
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(args.seed)
    conns = set()

    async def handle(creader, cwriter):
        STATS["connections"] += 1
        task = asyncio.current_task()
        conns.add(task)
        try:
            await Conn(args, rng).run(creader, cwriter)
        finally:
            conns.discard(task)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    server = await asyncio.start_server(handle, "127.0.0.1", args.listen, backlog=512)
    print("slowproxy: 127.0.0.1:%d -> %s, share %s, latency %d ms, seed %d"
          % (args.listen, args.upstream, args.share, args.latency_ms, args.seed), flush=True)
    write_stats(args)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1)
        except asyncio.TimeoutError:
            pass
        write_stats(args)
    server.close()
    for t in list(conns):
        t.cancel()
    if conns:
        await asyncio.wait(list(conns), timeout=5)
    STATS["stopped"] = True
    write_stats(args)
    print("slowproxy: %s" % json.dumps(STATS), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
