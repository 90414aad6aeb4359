#!/usr/bin/env python3
"""Slow clients against a running gateway: N connections each send the
start of a request whose header never ends (a field of SIZE bytes, no end
of line), and hold. Prints the gateway's RSS (from /proc/PID/status) before,
with all of them holding, and after they closed, and how many were answered
(431: the head memory budget refused them) rather than held. With SIZE
"idle", each connection instead sends one whole GET, reads its answer and
holds the connection open, idle (keep-alive).

    bench/slowclients.py PID HOST:PORT [N=10000] [SIZE=61440|idle]
"""
import socket, sys, time

pid, addr = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
idle = len(sys.argv) > 4 and sys.argv[4] == "idle"
size = 0 if idle else int(sys.argv[4]) if len(sys.argv) > 4 else 60 << 10
host, port = addr.rsplit(":", 1)


def rss_mib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


before = rss_mib()
head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size
if idle:
    head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
socks, refused = [], 0
start = time.time()
for i in range(n):
    s = socket.create_connection((host, int(port)))
    s.setblocking(False)
    try:
        s.send(head)
    except BlockingIOError:
        pass
    socks.append(s)
time.sleep(2)  # let the gateway read what was sent (and answer)
answered = 0
if idle:
    for s in socks:
        try:
            if s.recv(4096).startswith(b"HTTP/1.1 "):
                answered += 1
        except BlockingIOError:
            pass
    time.sleep(1)  # past the gateway's idle hold of its read buffers
held = rss_mib()
for s in socks:
    try:
        if s.recv(64).startswith(b"HTTP/1.1 431"):
            refused += 1
    except (BlockingIOError, ConnectionResetError):
        pass
for s in socks:
    s.close()
time.sleep(3)
after = rss_mib()
if idle:
    print(f"{n} idle keep-alive clients ({answered} answered first) in {time.time() - start:.1f} s: "
          f"RSS {before:.0f} MiB before, {held:.0f} MiB holding, {after:.0f} MiB after")
    sys.exit(0)
print(f"{n} clients x {size} B unterminated header in {time.time() - start:.1f} s: "
      f"RSS {before:.0f} MiB before, {held:.0f} MiB holding, {after:.0f} MiB after; "
      f"{refused} answered 431 at once")
