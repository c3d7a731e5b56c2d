#!/usr/bin/python3
# A stand-in for a guest writing console output into its virtlogd pipe
# (stdout): numbered lines of 100 bytes, one every PAUSE_MS (default 1),
# until stdin reaches EOF. Then it reports on stderr, as one JSON line, how
# many lines and bytes went whole into the pipe, and exits. The same program
# on both sides of the benchmark. A broken pipe ends it early (reported).
#
#   line_writer.py [PAUSE_MS]
import json
import os
import select
import sys


def line(n):
    head = "%09d " % n
    return (head + "x" * (99 - len(head)) + "\n").encode()


def main():
    pause = float(sys.argv[1]) / 1e3 if len(sys.argv) > 1 else 0.001
    out = sys.stdout.fileno()
    os.set_blocking(out, True)
    n = 0
    nbytes = 0
    ended = None
    while True:
        r, _, _ = select.select([0], [], [], pause)
        if r and not os.read(0, 4096):
            break
        buf = line(n)
        try:
            os.write(out, buf)
        except OSError as e:
            ended = e.strerror
            break
        n += 1
        nbytes += len(buf)
    os.close(out)
    sys.stderr.write(json.dumps({"lines": n, "bytes": nbytes, "ended": ended}) + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    main()
