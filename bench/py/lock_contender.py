#!/usr/bin/python3
# Tries to take the fcntl write lock on byte 0 of FILE (the byte virtlockd
# locks for a resource) every millisecond until stdin reaches EOF; each time
# it gets it, it lets go at once. Reports {"tries": N, "got": M} on stdout.
# M > 0 means the lock was free at some moment: a lock lost. Same program on
# both sides of the benchmark.
#
#   lock_contender.py FILE
import fcntl
import json
import os
import select
import sys


def main():
    fd = os.open(sys.argv[1], os.O_RDWR)
    tries = got = 0
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    while True:
        r, _, _ = select.select([0], [], [], 0.001)
        if r and not os.read(0, 4096):
            break
        tries += 1
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
        except OSError:
            continue
        got += 1
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)
    sys.stdout.write(json.dumps({"tries": tries, "got": got}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
