#!/usr/bin/env python3
"""Blue/green deploy of a gunicorn app behind a symlinked unix socket, the way a
`fab deploy` task would do it: plain subprocess calls, standard library only.

Layout (in $ZDT_RUN_DIR, made by start.sh): two slots, a and b, each with its
socket app-<slot>.sock, pid file app-<slot>.pid, version file version-<slot> and
log app-<slot>.log; clients connect through the link app.sock -> app-<active>.sock.

One deploy:
  1. pick the inactive slot and write the new version into its version file
     ($ZDT_NEW_VERSION, or a fresh sha-like id when it is empty);
  2. start gunicorn on that slot (a child of this process, in its process group);
  3. wait until it answers $ZDT_STATUS_PATH with "ok <new version>" (bounded);
  4. switch the link atomically: a new link under a temporary name, renamed over
     app.sock, so a client always finds a socket;
  5. let the old instance serve what it had already queued (--settle);
  6. SIGTERM the old master and wait (bounded) until it has exited.
Exits 0 when the new version serves; 1 when it did not come up (the old one keeps
serving) or the old one would not stop.

--no-wait-ready is the classic mistake, kept for zdt-check's negative control:
skip step 3 and switch while the new gunicorn is still starting. Clients then
find no socket behind the link (connect_missing) until gunicorn binds it, and
wait for the app's import once it has.

Environment: ZDT_RUN_DIR, ZDT_VENV, ZDT_NEW_VERSION, ZDT_STATUS_PATH (zdt-check
sets them), APP_IMPORT_DELAY (the app's import time, from the scenario's
[app].env), APP_DIR (the WSGI app's directory; default fixtures/python).
"""

import argparse
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = time.monotonic()


def log(msg):
    print("[deploy %6.2fs] %s" % (time.monotonic() - T0, msg), flush=True)


def fail(msg):
    log("FAILED: " + msg)
    sys.exit(1)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket (AF_UNIX) instead of TCP."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def status(sock_path, path, timeout=1.0):
    """(HTTP status, body) of GET path on the unix socket."""
    conn = UnixHTTPConnection(sock_path, timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def tail(path, n=20):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return "(no log: %s)\n" % e


def wait_ready(proc, sock_path, status_path, version, timeout, log_path):
    """Until the new instance answers "ok <version>"; False if it died or timed out."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log("gunicorn exited with %s; its log:\n%s" % (proc.returncode, tail(log_path)))
            return False
        try:
            code, body = status(sock_path, status_path)
            if code == 200 and body.split() == ["ok", version]:
                return True
            last = "answered %d %r" % (code, body.strip()[:80])
        except (OSError, http.client.HTTPException) as e:
            last = "%s: %s" % (type(e).__name__, e)
        time.sleep(0.1)
    log("not ready after %.0fs (%s); its log:\n%s" % (timeout, last, tail(log_path)))
    return False


def read_pid(path):
    try:
        with open(path, "r", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def alive(pid):
    """Whether pid runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid, "r", encoding="ascii") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def wait_exit(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def write_atomically(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def switch_link(link, target_name):
    """Point link at target_name without a moment where link is missing."""
    tmp = "%s.tmp.%d" % (link, os.getpid())
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(target_name, tmp)
    os.replace(tmp, link)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settle", type=float, default=0.5,
                    help="seconds between the switch and stopping the old instance (default 0.5)")
    ap.add_argument("--ready-timeout", type=float, default=30.0,
                    help="longest wait for the new instance to answer (default 30)")
    ap.add_argument("--stop-timeout", type=float, default=20.0,
                    help="longest wait for the old master to exit after SIGTERM (default 20)")
    ap.add_argument("--no-wait-ready", action="store_true",
                    help="BROKEN on purpose: switch without waiting for the new instance")
    args = ap.parse_args()

    run = os.environ.get("ZDT_RUN_DIR") or fail("ZDT_RUN_DIR is not set")
    venv = os.environ.get("ZDT_VENV") or fail("ZDT_VENV is not set (a venv with gunicorn)")
    status_path = os.environ.get("ZDT_STATUS_PATH") or "/_status"
    app_dir = os.environ.get("APP_DIR") or os.path.join(HERE, "..", "..", "fixtures", "python")
    version = os.environ.get("ZDT_NEW_VERSION") or secrets.token_hex(6)

    link = os.path.join(run, "app.sock")
    try:
        active_name = os.readlink(link)
    except OSError as e:
        fail("cannot read the link %s: %s (did start.sh run?)" % (link, e))
    old = "a" if active_name == "app-a.sock" else "b" if active_name == "app-b.sock" else None
    if old is None:
        fail("%s points at %r, not a slot socket" % (link, active_name))
    new = "b" if old == "a" else "a"
    new_sock = os.path.join(run, "app-%s.sock" % new)
    new_pid_file = os.path.join(run, "app-%s.pid" % new)
    new_log = os.path.join(run, "app-%s.log" % new)
    old_pid = read_pid(os.path.join(run, "app-%s.pid" % old))
    log("deploying %s: slot %s -> slot %s (old master pid %s)" % (version, old, new, old_pid))

    stale = read_pid(new_pid_file)
    if stale is not None and alive(stale):
        fail("slot %s still runs gunicorn pid %d from an earlier deploy" % (new, stale))

    # 1-2. The new version on the inactive slot.
    version_file = os.path.join(run, "version-%s" % new)
    write_atomically(version_file, version + "\n")
    env = dict(os.environ)
    env["ZDT_VERSION_FILE"] = version_file
    env["ZDT_STARTUP_DELAY"] = os.environ.get("APP_IMPORT_DELAY", "0")
    cmd = [
        os.path.join(venv, "bin", "gunicorn"),
        "-c", os.path.join(HERE, "gunicorn.conf.py"),
        "--chdir", app_dir,
        "--bind", "unix:" + new_sock,
        "--pid", new_pid_file,
        "app:application",
    ]
    with open(new_log, "ab") as out:
        # Not a new session: the new instance stays in this deploy's process group.
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, close_fds=True)
    log("started gunicorn pid %d on %s" % (proc.pid, os.path.basename(new_sock)))

    # 3. Wait until it answers with the new version.
    if args.no_wait_ready:
        log("NOT waiting for the new instance (--no-wait-ready)")
    elif not wait_ready(proc, new_sock, status_path, version, args.ready_timeout, new_log):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=args.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        fail("the new instance did not come up; slot %s keeps serving" % old)
    else:
        log("slot %s answers %s" % (new, version))

    # 4. Switch.
    switch_link(link, os.path.basename(new_sock))
    log("app.sock -> %s" % os.path.basename(new_sock))

    # 5-6. Let the old instance finish what it queued, then stop it.
    time.sleep(args.settle)
    if old_pid is None or not alive(old_pid):
        log("no old master running on slot %s" % old)
    else:
        os.kill(old_pid, signal.SIGTERM)
        log("SIGTERM old master %d" % old_pid)
        if not wait_exit(old_pid, args.stop_timeout):
            os.kill(old_pid, signal.SIGKILL)
            fail("old master %d still running %.0fs after SIGTERM; killed" % (old_pid, args.stop_timeout))
        log("old master %d exited" % old_pid)
    log("deployed %s on slot %s" % (version, new))
    return 0


if __name__ == "__main__":
    sys.exit(main())
