#!/usr/bin/env python3
"""Misbehaving clients for tools/soak.sh, against running servers.

One round (about --seconds long) of: echo clients that half-close, reset
mid-transfer, or read slowly; HTTP clients that pipeline, reset
mid-download, half-close, or read slowly. Every reply that is read is
checked byte for byte (also the bytes read before a deliberate reset).
Any exception in a client, of whatever type, is a failure, and every
client thread must finish and have completed at least one action.
Loopback only; every loop is bounded in count and time. Prints one summary
line; exit status 1 if any check failed.
"""
import argparse
import random
import socket
import struct
import sys
import threading
import time
import traceback

HOST = "127.0.0.1"
TIMEOUT = 10.0


def connect(port):
    s = socket.create_connection((HOST, port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def reset(s):
    """Closes with RST (SO_LINGER 0) instead of FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def recv_all(s, limit=64 << 20):
    out = bytearray()
    while len(out) < limit:
        b = s.recv(1 << 16)
        if not b:
            break
        out += b
    return bytes(out)


class Round:
    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.seconds
        self.big = open(args.big_file, "rb").read()
        self.lock = threading.Lock()
        self.done = {}
        self.failures = []
        self.completed = [0] * args.clients  # actions finished, per worker
        self.finished = [False] * args.clients  # worker returned normally

    def ok(self, what):
        with self.lock:
            self.done[what] = self.done.get(what, 0) + 1

    def fail(self, what):
        with self.lock:
            self.failures.append(what)

    def running(self):
        return time.monotonic() < self.deadline and not self.failures

    # --- echo -------------------------------------------------------------
    def echo_half_close(self, rng):
        data = rng.randbytes(rng.randint(1, 300_000))
        with connect(self.args.echo) as s:
            sender = threading.Thread(
                target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
            sender.start()
            got = recv_all(s)
            sender.join()
        if got != data:
            self.fail(f"echo half-close: {len(got)} of {len(data)} bytes back")
        else:
            self.ok("echo half-close")

    def echo_reset_mid_transfer(self, rng):
        data = rng.randbytes(rng.randint(10_000, 2_000_000))
        s = connect(self.args.echo)
        try:
            s.sendall(data)
            got = s.recv(rng.randint(1, 65536))
        finally:
            reset(s)
        # What came back before the reset is the start of what was sent.
        if not got or not data.startswith(got):
            self.fail(f"echo reset mid-transfer: {len(got)} bytes back, "
                      "not a prefix of what was sent")
        else:
            self.ok("echo reset mid-transfer")

    def echo_slow_reader(self, rng):
        data = rng.randbytes(200_000)
        # Slow by sleeping between small reads. (A tiny SO_RCVBUF is not
        # used: with loopback's 64 KiB MSS the receiver then withholds window
        # updates and the sender waits in zero-window probe back-off, so
        # nothing moves for seconds and the write timeout rightly fires.)
        with connect(self.args.echo) as s:
            sender = threading.Thread(target=s.sendall, args=(data,))
            sender.start()
            got = bytearray()
            while len(got) < len(data) and time.monotonic() < self.deadline + 5:
                got += s.recv(4096)
                time.sleep(0.001)
            sender.join()
        if bytes(got) != data:
            self.fail(f"echo slow reader: {len(got)} of {len(data)} bytes")
        else:
            self.ok("echo slow reader")

    # --- http -------------------------------------------------------------
    def request(self, path, close=False):
        return (f"GET {path} HTTP/1.1\r\nHost: soak\r\n"
                + ("Connection: close\r\n" if close else "") + "\r\n").encode()

    def http_pipeline(self, rng):
        n = rng.randint(2, 40)
        with connect(self.args.http) as s:
            s.sendall(b"".join(self.request("/small.txt") for _ in range(n - 1))
                      + self.request("/small.txt", close=True))
            got = recv_all(s)
        parts = got.split(b"HTTP/1.1 200 OK\r\n")
        # A truncated response has no blank line: its body is None.
        bodies = [(p.split(b"\r\n\r\n", 1) + [None])[1] for p in parts[1:]]
        if parts[0] or len(bodies) != n or any(b != b"soak\n" for b in bodies):
            self.fail(f"http pipeline: {len(bodies)} of {n} responses right")
        else:
            self.ok("http pipeline")

    def http_download(self, rng, slow):
        with connect(self.args.http) as s:
            s.sendall(self.request("/big.bin", close=True))
            got = bytearray()
            while True:
                b = s.recv(16384 if slow else 1 << 16)
                if not b:
                    break
                got += b
                if slow:
                    time.sleep(0.002)
        body = bytes(got).split(b"\r\n\r\n", 1)[-1]
        if body != self.big:
            self.fail(f"http download: body {len(body)} of {len(self.big)}")
        else:
            self.ok("http slow download" if slow else "http download")

    def http_reset_mid_download(self, rng):
        s = connect(self.args.http)
        try:
            s.sendall(self.request("/big.bin"))
            want = rng.randint(1, 65536)
            got = bytearray()
            while len(got) < want:
                b = s.recv(want - len(got))
                if not b:
                    break
                got += b
        finally:
            reset(s)
        # Read up to the reset: a 200 whose body so far is the file's start.
        head, sep, body = bytes(got).partition(b"\r\n\r\n")
        expect_head = b"HTTP/1.1 200 OK\r\n"
        if len(got) < want:
            self.fail(f"http reset mid-download: EOF after {len(got)} bytes")
        elif not (head.startswith(expect_head) if sep
                  else expect_head.startswith(head[:len(expect_head)])):
            self.fail(f"http reset mid-download: {bytes(got[:80])!r}")
        elif not self.big.startswith(body):
            self.fail("http reset mid-download: body is not the file's start")
        else:
            self.ok("http reset mid-download")

    def http_half_close(self, rng):
        with connect(self.args.http) as s:
            s.sendall(self.request("/small.txt"))
            s.shutdown(socket.SHUT_WR)
            got = recv_all(s)
        if not (got.startswith(b"HTTP/1.1 200") and got.endswith(b"soak\n")):
            self.fail(f"http half-close: {got[:80]!r}")
        else:
            self.ok("http half-close")

    def worker(self, index):
        rng = random.Random(self.args.seed * 1000 + index)
        actions = [self.echo_half_close, self.echo_reset_mid_transfer,
                   self.echo_slow_reader, self.http_pipeline,
                   lambda r: self.http_download(r, slow=False),
                   lambda r: self.http_download(r, slow=True),
                   self.http_reset_mid_download, self.http_half_close]
        names = ["echo_half_close", "echo_reset_mid_transfer",
                 "echo_slow_reader", "http_pipeline", "http_download",
                 "http_slow_download", "http_reset_mid_download",
                 "http_half_close"]
        for _ in range(100_000):
            if not self.running():
                break
            i = rng.randrange(len(actions))
            try:
                actions[i](rng)
            except Exception as e:  # any exception is a failed check
                where = traceback.extract_tb(e.__traceback__)[-1]
                self.fail(f"worker {index}: {names[i]}: "
                          f"{type(e).__name__}: {e} "
                          f"(line {where.lineno})")
            else:
                self.completed[index] += 1
        self.finished[index] = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--echo", type=int, required=True, help="echo port")
    ap.add_argument("--http", type=int, required=True, help="http port")
    ap.add_argument("--big_file", required=True,
                    help="local copy of the server's /big.bin")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.seconds <= 0 or args.seconds > 3600 or not 1 <= args.clients <= 64:
        ap.error("--seconds must be in (0, 3600], --clients in 1..64")
    r = Round(args)
    threads = [threading.Thread(target=r.worker, args=(i,))
               for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.seconds + 60)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(r.done.items()))
    print(f"chaos: {sum(r.done.values())} clients ok ({summary}); "
          f"actions per worker {r.completed}")
    for i, t in enumerate(threads):
        if t.is_alive():
            r.fail(f"worker {i} did not finish")
        elif not r.finished[i]:
            r.fail(f"worker {i} died")
        elif r.completed[i] == 0 and not r.failures:
            r.fail(f"worker {i} completed no action")
    for f in r.failures[:10]:
        print(f"chaos: FAIL {f}")
    return 1 if r.failures else 0


if __name__ == "__main__":
    sys.exit(main())
