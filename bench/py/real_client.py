#!/usr/bin/python3
# The real libvirt 9.0 side of the benchmark's client workloads: the same
# protocol as bench/src/clients/ours.ts (READY on stdout, wait for GO on
# stdin, run, print one JSON line), through libvirt's own client libraries:
# python3-libvirt for the main program, and libvirt-admin.so.0 through ctypes
# for the admin program (python3-libvirt has no admin binding).
#
#   real_client.py MODE URI [ARG...]
#     cold-admin URI                    time open + list-servers on an inactive socket
#     rtt-admin URI WARMUP N            per-call time of N list-servers after WARMUP
#     rtt-version URI WARMUP N          per-call time of N getLibVersion()
#     tput-version URI INFLIGHT MS      calls completed in MS with INFLIGHT threads on one connection
#     hold URI MAX TIMEOUT_MS           open up to MAX idle connections (stop at the first that
#                                       does not open within TIMEOUT_MS), report, hold until EOF
#     reexec URI DAEMON MS DIR          list-servers back to back for MS, reconnecting on failure;
#                                       the longest gap between two answers (a re-exec lands in it);
#                                       meanwhile a client of DAEMON's main program holds a log pipe
#                                       with a writer (virtlogd) or a lock (virtlockd) under DIR
#     logd-tput SOCKET DATA LOG         open LOG through virtlogd at SOCKET, `cat DATA` into the pipe,
#                                       time until LOG ends with DATA's last line
#
# virtlogd's and virtlockd's own programs (LOG, LOCK_SPACE) have no client in
# any installed package: they are spoken here directly, over libvirt's RPC
# framing (XDR; see Rpc below).
import ctypes
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid as uuidlib


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def ready_then_go():
    out({"ready": True})
    line = sys.stdin.readline()
    if line.strip() != "GO":
        os._exit(3)


class Admin:
    """libvirt-admin.so.0 through ctypes: just what the benchmark calls."""

    def __init__(self):
        lib = ctypes.CDLL("libvirt-admin.so.0")
        lib.virAdmConnectOpen.restype = ctypes.c_void_p
        lib.virAdmConnectOpen.argtypes = [ctypes.c_char_p, ctypes.c_uint]
        lib.virAdmConnectListServers.restype = ctypes.c_int
        lib.virAdmConnectListServers.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p)), ctypes.c_uint]
        lib.virAdmServerGetName.restype = ctypes.c_char_p
        lib.virAdmServerGetName.argtypes = [ctypes.c_void_p]
        lib.virAdmServerFree.restype = ctypes.c_int
        lib.virAdmServerFree.argtypes = [ctypes.c_void_p]
        lib.virAdmConnectClose.restype = ctypes.c_int
        lib.virAdmConnectClose.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.libc = ctypes.CDLL(None)
        self.libc.free.argtypes = [ctypes.c_void_p]

    def open(self, uri):
        conn = self.lib.virAdmConnectOpen(uri.encode(), 0)
        if not conn:
            raise RuntimeError("virAdmConnectOpen(%s) failed" % uri)
        return conn

    def list_servers(self, conn):
        arr = ctypes.POINTER(ctypes.c_void_p)()
        n = self.lib.virAdmConnectListServers(conn, ctypes.byref(arr), 0)
        if n < 0:
            raise RuntimeError("virAdmConnectListServers failed")
        names = []
        for i in range(n):
            names.append(self.lib.virAdmServerGetName(arr[i]).decode())
            self.lib.virAdmServerFree(arr[i])
        self.libc.free(arr)
        return names

    def close(self, conn):
        self.lib.virAdmConnectClose(conn)


# libvirt's RPC framing, as libvirt 9.0 defines it (src/rpc/virnetprotocol.x):
# a message is a 4-byte big-endian length (counting itself), a header of six
# 4-byte fields (program, version, procedure, type, serial, status) and an
# XDR payload. Replies of type REPLY_WITH_FDS carry a 4-byte fd count before
# the payload; each fd then follows on the socket as one byte with the fd
# attached (SCM_RIGHTS).
MSG_CALL, MSG_REPLY, MSG_REPLY_WITH_FDS = 0, 1, 5
STATUS_OK, STATUS_ERROR = 0, 1

# src/logging/log_protocol.x and src/locking/lock_protocol.x (9.0).
LOG_PROGRAM = 0x87539319
LOG_OPEN_LOG_FILE, LOG_GET_LOG_FILE_POSITION = 1, 2
LOG_OPEN_TRUNCATE = 1
LOCK_PROGRAM = 0xEA7BEEF
LOCK_REGISTER, LOCK_ACQUIRE_RESOURCE, LOCK_RELEASE_RESOURCE = 1, 6, 7
LOCK_ACQUIRE_AUTOCREATE = 2

BENCH_DOMAIN = (uuidlib.UUID("c7a5fdbd-edaf-9455-926a-d65c16db1809").bytes, "bench")


def xdr_u32(v):
    return struct.pack(">I", v)


def xdr_u64(v):
    return struct.pack(">Q", v)


def xdr_string(s):
    b = s.encode()
    return struct.pack(">I", len(b)) + b + b"\0" * (-len(b) % 4)


def xdr_domain(dom):
    return dom[0] + xdr_string(dom[1])  # uuid: fixed 16-byte opaque, no length


class Rpc:
    """One connection to a libvirt RPC server, calls one at a time."""

    def __init__(self, path, program, version=1):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.settimeout(HANG_S)
        self.program = program
        self.version = version
        self.serial = 0

    def _recv(self, n, fds):
        buf = b""
        while len(buf) < n:
            data, got, _flags, _addr = socket.recv_fds(self.sock, n - len(buf), 8)
            fds.extend(got)
            if not data:
                raise ConnectionError("connection closed by the daemon")
            buf += data
        return buf

    def call(self, proc, payload):
        """Returns (reply payload, fds received)."""
        self.serial += 1
        body = struct.pack(">IIiiIi", self.program, self.version, proc, MSG_CALL, self.serial, STATUS_OK) + payload
        self.sock.sendall(struct.pack(">I", len(body) + 4) + body)
        fds = []
        while True:
            (length,) = struct.unpack(">I", self._recv(4, fds))
            msg = self._recv(length - 4, fds)
            _prog, _vers, _proc, typ, serial, status = struct.unpack(">IIiiIi", msg[:24])
            if typ not in (MSG_REPLY, MSG_REPLY_WITH_FDS) or serial != self.serial:
                continue
            rest = msg[24:]
            nfds = 0
            if typ == MSG_REPLY_WITH_FDS:
                (nfds,) = struct.unpack(">I", rest[:4])
                rest = rest[4:]
            while len(fds) < nfds:
                data, got, _flags, _addr = socket.recv_fds(self.sock, 1, 8)
                fds.extend(got)
                if not data and not got:
                    raise ConnectionError("connection closed before the fds")
            if status == STATUS_ERROR:
                for fd in fds:
                    os.close(fd)
                raise RuntimeError("call %d failed: %s" % (proc, rpc_error_text(rest)))
            return rest, fds

    def close(self):
        self.sock.close()


def rpc_error_text(payload):
    """The message of a virNetMessageError payload: code, domain, then an optional string."""
    try:
        code, _domain, present = struct.unpack(">iiI", payload[:12])
        if present:
            (n,) = struct.unpack(">I", payload[12:16])
            return "%s (code %d)" % (payload[16:16 + n].decode(errors="replace"), code)
        return "code %d" % code
    except struct.error:
        return "undecodable error"


def log_open(rpc, path, truncate=True):
    """DOMAIN_OPEN_LOG_FILE: the pipe's write end, blocking (as QEMU gets it)."""
    payload = xdr_string("qemu") + xdr_domain(BENCH_DOMAIN) + xdr_string(path) + xdr_u32(LOG_OPEN_TRUNCATE if truncate else 0)
    _ret, fds = rpc.call(LOG_OPEN_LOG_FILE, payload)
    if len(fds) != 1:
        raise RuntimeError("DOMAIN_OPEN_LOG_FILE returned %d fds" % len(fds))
    os.set_blocking(fds[0], True)
    return fds[0]


def log_position(rpc, path):
    ret, _fds = rpc.call(LOG_GET_LOG_FILE_POSITION, xdr_string(path) + xdr_u32(0))
    return struct.unpack(">QQ", ret[:16])


def lock_register(rpc, owner_pid):
    payload = xdr_domain(BENCH_DOMAIN) + xdr_u32(1) + xdr_u32(owner_pid) + xdr_u32(0)
    rpc.call(LOCK_REGISTER, payload)


def lock_acquire(rpc, path):
    rpc.call(LOCK_ACQUIRE_RESOURCE, xdr_string("") + xdr_string(path) + xdr_u32(LOCK_ACQUIRE_AUTOCREATE))


def lock_release(rpc, path):
    rpc.call(LOCK_RELEASE_RESOURCE, xdr_string("") + xdr_string(path) + xdr_u32(0))


HERE = os.path.dirname(os.path.abspath(__file__))
# A call unanswered this long counts as hung (lost), in the re-exec run.
HANG_S = 3.0


def tail_matches(path, marker):
    """Whether the log ends with `marker`, looking into the newest backup if it was cut at a rollover."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - len(marker)))
            tail = f.read()
    except FileNotFoundError:
        return False
    if len(tail) < len(marker):
        try:
            with open(path + ".0", "rb") as f:
                size = os.fstat(f.fileno()).st_size
                f.seek(max(0, size - (len(marker) - len(tail))))
                tail = f.read() + tail
        except FileNotFoundError:
            return False
    return tail == marker


def last_line(path):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(max(0, size - 4096))
        data = f.read()
    return data[data.rstrip(b"\n").rfind(b"\n") + 1:]


def logd_throughput(open_pipe, data, log):
    """Shared by both clients' logic: GO, `cat DATA` into the pipe, wait for the file's last line."""
    marker = last_line(data)
    fd = open_pipe()
    ready_then_go()
    t0 = time.perf_counter()
    subprocess.run(["cat", data], stdout=fd, check=True)
    os.close(fd)
    t_writer = time.perf_counter()
    deadline = t_writer + 120
    while not tail_matches(log, marker):
        if time.perf_counter() > deadline:
            raise RuntimeError("%s never ended with the data's last line" % log)
        time.sleep(0.0002)
    t1 = time.perf_counter()
    return {"seconds": t1 - t0, "writerSeconds": t_writer - t0, "bytes": os.path.getsize(data)}


class LogHolder:
    """A LOG program client holding a pipe, with line_writer.py writing into it through a re-exec."""

    def __init__(self, sock, workdir):
        self.rpc = Rpc(sock, LOG_PROGRAM)
        self.log = os.path.join(workdir, "reexec-real-%d.log" % os.getpid())
        fd = log_open(self.rpc, self.log)
        self.writer = subprocess.Popen([sys.executable, os.path.join(HERE, "line_writer.py")],
                                       stdin=subprocess.PIPE, stdout=fd, stderr=subprocess.PIPE)
        os.close(fd)

    def finish(self):
        try:
            log_position(self.rpc, self.log)
            kept = True
        except (RuntimeError, OSError):
            kept = False
        try:
            _out, err = self.writer.communicate(timeout=10)
            report = json.loads(err.decode().strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            # Blocked in write(): the daemon no longer reads the pipe.
            self.writer.kill()
            self.writer.wait()
            report = {"lines": -1, "bytes": -1, "ended": "writer blocked: the pipe is no longer read"}
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline:
            if os.path.exists(self.log) and os.path.getsize(self.log) >= report["bytes"]:
                break
            time.sleep(0.005)
        self.rpc.close()
        return {"mainKept": kept, "log": self.log, "writer": report}


class LockHolder:
    """A LOCK_SPACE program client holding a lock for an owner process, with lock_contender.py trying it."""

    def __init__(self, sock, workdir):
        self.owner = subprocess.Popen(["sleep", "600"])
        self.rpc = Rpc(sock, LOCK_PROGRAM)
        self.resource = os.path.join(workdir, "reexec-real-%d.img" % os.getpid())
        lock_register(self.rpc, self.owner.pid)
        lock_acquire(self.rpc, self.resource)
        self.contender = subprocess.Popen([sys.executable, os.path.join(HERE, "lock_contender.py"), self.resource],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.contender.stdout.readline()

    def finish(self):
        self.contender.stdin.close()
        report = json.loads(self.contender.stdout.readline())
        self.contender.wait()
        try:
            lock_release(self.rpc, self.resource)
            kept = True
        except (RuntimeError, OSError):
            kept = False
        self.rpc.close()
        self.owner.kill()
        self.owner.wait()
        return {"mainKept": kept, "lock": report}


def main():
    mode, uri = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    # Quiet: libvirt's client prints errors to stderr by default.
    os.environ.setdefault("LIBVIRT_DEBUG", "4")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass

    if mode == "cold-admin":
        adm = Admin()
        ready_then_go()
        t0 = time.perf_counter()
        conn = adm.open(uri)
        servers = adm.list_servers(conn)
        t1 = time.perf_counter()
        adm.close(conn)
        out({"ms": (t1 - t0) * 1e3, "servers": servers})
    elif mode == "rtt-admin":
        warm, n = int(args[0]), int(args[1])
        adm = Admin()
        conn = adm.open(uri)
        ready_then_go()
        for _ in range(warm):
            adm.list_servers(conn)
        t0 = time.perf_counter()
        for _ in range(n):
            adm.list_servers(conn)
        t1 = time.perf_counter()
        adm.close(conn)
        out({"usPerCall": (t1 - t0) * 1e6 / n, "calls": n})
    elif mode == "rtt-version":
        import libvirt
        warm, n = int(args[0]), int(args[1])
        conn = libvirt.open(uri)
        ready_then_go()
        for _ in range(warm):
            conn.getLibVersion()
        t0 = time.perf_counter()
        for _ in range(n):
            conn.getLibVersion()
        t1 = time.perf_counter()
        conn.close()
        out({"usPerCall": (t1 - t0) * 1e6 / n, "calls": n})
    elif mode == "tput-version":
        import libvirt
        inflight, ms = int(args[0]), float(args[1])
        conn = libvirt.open(uri)
        conn.getLibVersion()
        counts = [0] * inflight
        errors = []
        state = {"end": 0.0}
        go = threading.Event()

        def worker(i):
            go.wait()
            try:
                while time.perf_counter() < state["end"]:
                    conn.getLibVersion()
                    counts[i] += 1
            except Exception as e:  # reported, never hidden
                errors.append(str(e))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(inflight)]
        for t in threads:
            t.start()
        ready_then_go()
        t0 = time.perf_counter()
        state["end"] = t0 + ms / 1e3
        go.set()
        for t in threads:
            t.join()
        t1 = time.perf_counter()
        conn.close()
        out({"calls": sum(counts), "seconds": t1 - t0, "errors": errors[:3]})
    elif mode == "reexec":
        daemon, ms, workdir = args[0], float(args[1]), args[2]
        adm = Admin()
        conn = adm.open(uri)
        adm.list_servers(conn)
        helper = (LogHolder if daemon == "virtlogd" else LockHolder)("/run/libvirt/%s-sock" % daemon, workdir)
        ready_then_go()
        t0 = time.perf_counter()
        end = t0 + ms / 1e3
        st = {"conn": conn, "last": t0, "gap": 0.0, "calls": 0, "failures": 0, "inflight": None}

        def loop():
            while time.perf_counter() < end:
                try:
                    if st["conn"] is None:
                        st["conn"] = adm.open(uri)
                    st["inflight"] = time.perf_counter()
                    adm.list_servers(st["conn"])
                    t = time.perf_counter()
                    st["inflight"] = None
                    st["gap"] = max(st["gap"], t - st["last"])
                    st["last"] = t
                    st["calls"] += 1
                except RuntimeError:
                    st["inflight"] = None
                    st["failures"] += 1
                    if st["conn"] is not None:
                        adm.close(st["conn"])
                        st["conn"] = None
                    time.sleep(0.001)
            st["t1"] = time.perf_counter()

        th = threading.Thread(target=loop, daemon=True)
        th.start()
        th.join(ms / 1e3 + HANG_S)
        res = {"calls": st["calls"], "failures": st["failures"]}
        if th.is_alive():
            # A call never answered (no keepalive: a client would wait forever).
            # Is the daemon serving at all? A fresh connection says.
            box = []

            def probe():
                try:
                    c = adm.open(uri)
                    adm.list_servers(c)
                    box.append(True)
                except RuntimeError:
                    box.append(False)

            pt = threading.Thread(target=probe, daemon=True)
            pt.start()
            pt.join(HANG_S)
            res.update({"hung": 1, "hungAtMs": ((st["inflight"] or end) - t0) * 1e3, "answersAfter": bool(box and box[0])})
        else:
            if st["conn"] is not None:
                adm.close(st["conn"])
            res.update({"maxGapMs": st["gap"] * 1e3, "sinceLastMs": (st["t1"] - st["last"]) * 1e3})
        res.update(helper.finish())
        out(res)
        os._exit(0)
    elif mode == "logd-tput":
        data, log = args[0], args[1]
        rpc = Rpc(uri, LOG_PROGRAM)
        res = logd_throughput(lambda: log_open(rpc, log), data, log)
        rpc.close()
        out(res)
    elif mode == "hold":
        import libvirt
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        limit, timeout_ms = int(args[0]), float(args[1])
        conns = []
        refused = None

        def open_one(box):
            try:
                box.append(libvirt.open(uri))
            except Exception as e:
                box.append(e)

        while len(conns) < limit:
            box = []
            th = threading.Thread(target=open_one, args=(box,), daemon=True)
            th.start()
            th.join(timeout_ms / 1e3)
            if not box:
                refused = "open did not complete within %d ms" % timeout_ms
                break
            if isinstance(box[0], Exception):
                refused = str(box[0]).strip()
                break
            conns.append(box[0])
        out({"held": len(conns), "refused": refused})
        sys.stdin.read()
        # A connection stuck in the backlog would block a clean exit.
        os._exit(0)
    else:
        sys.stderr.write("unknown mode %s\n" % mode)
        os._exit(2)


if __name__ == "__main__":
    main()
