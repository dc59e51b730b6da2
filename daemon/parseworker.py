"""The parser process: `python -m daemon.parseworker FD` parses the feeds `workers.ParserPool`
sends over the socket FD and sends each result (or the exception) back, one at a time.

It imports only `daemon.parse` and what that needs, nothing of the CLI, the store or Apprise:
a worker started by multiprocessing's "spawn" re-imports the daemon's entry point and measured
45 MB, plus 13 MB for multiprocessing's resource tracker (bench/RESULTS.md). This one idles at
about 25 MB and exits when the daemon closes the socket.

Frames both ways: an 8-byte big-endian length, then a pickle. Both ends are this package.

A worker runs at a lower CPU priority (`NICENESS`) than the daemon. Parsing is bulk work that can
wait a moment; the daemon's event loop cannot: it fetches the next bodies, stores and matches
what the workers parsed and delivers alerts, one thing at a time. With three busy processes on
two cores, a fair share left the loop waiting for a core a quarter of the time while the workers
waited for it to feed them; with the loop first, cold polls of 1,000 feeds took 8 % less time
(bench/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import socket
import struct
import sys
from io import BufferedIOBase
from typing import Any

from daemon.parse import parse_feed

FRAME_HEADER = struct.Struct("!Q")
NICENESS = 10  # added to the daemon's: the event loop gets a core first
PAGE_KIB = resource.getpagesize() // 1024


def frame(value: object) -> bytes:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return FRAME_HEADER.pack(len(payload)) + payload


def resident_kib() -> int:
    """This process's resident memory now; 0 where /proc is missing. Not `ru_maxrss`: Linux
    carries that across exec, so a worker started by a big process would inherit its peak."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_KIB
    except (OSError, ValueError, IndexError):
        return 0


def serve(stream: BufferedIOBase) -> None:
    """Answer requests until the other end closes: ("ok", ParsedFeed, resident KiB) or
    ("error", exception, resident KiB)."""
    while True:
        header = stream.read(FRAME_HEADER.size)
        if len(header) < FRAME_HEADER.size:
            return
        (length,) = FRAME_HEADER.unpack(header)
        request: dict[str, Any] = pickle.loads(stream.read(length))
        try:
            reply: tuple[str, object] = ("ok", parse_feed(**request))
        except Exception as exc:  # sent back whole: ParseError, or a caller's bug
            reply = ("error", exc)
        stream.write(frame((*reply, resident_kib())))
        stream.flush()


def main(argv: list[str]) -> int:
    with contextlib.suppress(OSError):  # lowering one's own priority is always allowed; be safe
        os.nice(NICENESS)
    connection = socket.socket(fileno=int(argv[1]))
    # Until the daemon closes the socket, or goes away mid-answer.
    with connection, connection.makefile("rwb") as stream, contextlib.suppress(OSError):
        serve(stream)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
