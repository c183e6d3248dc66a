# m1studio's agent in a node's container. It reads commands on standard input, one JSON object
# per line ({"id", "argv", "user", "stdin", "inline"}), runs each at once as its user, as
# `docker exec` would, and writes back one JSON line per command ({"id", "code", "stdout",
# "stderr"}) when it ends. An "inline" command is a Python program with a function
# `main(argv, out, err)`, which the agent loads once and calls itself, as root, saving the
# program's start. A command with "repeat" ({"every", "timeout", "expect", "file", "status"}) is
# run again every "every" seconds until it exits 0 (with "expect" as its output, stripped, when
# given), once "file" exists (with its eighth line, a postmaster.pid's status, one of "status",
# when given); it is answered as it last ended, or with 124 after "timeout" seconds, as
# `timeout` would. Its argument vector may be empty: the file alone is then waited for. At the
# end of its input the agent waits for the commands still running, then exits. Its first line,
# before any answer, is {"agent": "m1studio", "protocol": N}.
import io
import json
import os
import pwd
import runpy
import subprocess
import sys
import threading
import time

# The version of the protocol: the runner checks it on the first line, and talks to no other.
PROTOCOL = 1

replies = threading.Lock()
loading = threading.Lock()
programs = {}


def reply(message):
    line = json.dumps(message) + "\n"
    with replies:
        sys.stdout.write(line)
        sys.stdout.flush()


def collect(stream, chunks):
    for chunk in iter(lambda: stream.read1(65536), b""):
        chunks.append(chunk)


def inline(request):
    path = request["argv"][0]
    try:
        with loading:
            changed = os.stat(path).st_mtime_ns
            loaded = programs.get(path)
            if loaded is None or loaded[0] != changed:
                loaded = programs[path] = (changed, runpy.run_path(path, run_name="program"))
    except FileNotFoundError:
        return 127, "", "%s: not found" % path
    main = loaded[1]["main"]
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(request["argv"], out, err)
    except Exception as error:
        code = 1
        err.write("%s failed: %r\n" % (path, error))
    return (code if isinstance(code, int) else 0), out.getvalue(), err.getvalue()


def run(request, deadline=None):
    argv, stdin = request["argv"], request.get("stdin")
    try:
        user = pwd.getpwnam(request["user"])
    except KeyError:
        return 126, "", "no user named %s in this container" % request["user"]
    try:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd="/",
            env=dict(os.environ, HOME=user.pw_dir),
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=os.getgrouplist(user.pw_name, user.pw_gid),
        )
    except OSError as error:
        code = 127 if isinstance(error, FileNotFoundError) else 126
        return code, "", "%s: %s" % (argv[0], error.strerror)
    out, err = [], []
    readers = [
        threading.Thread(target=collect, args=(child.stdout, out), daemon=True),
        threading.Thread(target=collect, args=(child.stderr, err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    if stdin is not None:
        try:
            child.stdin.write(stdin.encode())
            child.stdin.close()
        except BrokenPipeError:
            pass
    try:
        code = child.wait(None if deadline is None else max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        code = 124
    # A daemon the command started may keep its output open: what came so far is the output.
    for reader in readers:
        reader.join(2)
    stdout = b"".join(out).decode(errors="replace")
    stderr = b"".join(err).decode(errors="replace")
    return (code if code >= 0 else 128 - code), stdout, stderr


def passed(repeat):
    path = repeat.get("file")
    if path is None:
        return True
    status = repeat.get("status")
    if status is None:
        return os.path.exists(path)
    try:
        with open(path) as file:
            lines = file.read().split("\n")
    except OSError:
        return False
    return len(lines) > 7 and lines[7].strip() in status


def repeat(request):
    repeat = request["repeat"]
    deadline = time.monotonic() + repeat["timeout"]
    every, expect = repeat["every"], repeat.get("expect")
    last = 124, "", ""
    while time.monotonic() < deadline:
        if passed(repeat):
            if not request["argv"]:
                return 0, "", ""
            code, stdout, stderr = run(request, deadline)
            if code == 0 and (expect is None or stdout.strip() == expect):
                return code, stdout, stderr
            if code == 124 and not (stdout or stderr) and time.monotonic() >= deadline:
                # Cut off at the deadline before it said anything: the last words are the
                # previous run's.
                break
            last = 124, stdout, stderr
        time.sleep(min(every, max(deadline - time.monotonic(), 0)))
    return last


def answer(request):
    # Every request is answered, whatever happens: its sender waits for it.
    try:
        kind = inline if request.get("inline") else repeat if request.get("repeat") else run
        code, stdout, stderr = kind(request)
    except Exception as error:
        code, stdout, stderr = 126, "", "m1studio's agent could not run it: %r" % error
    reply({"id": request["id"], "code": code, "stdout": stdout, "stderr": stderr})


# The first line says who answers, and which protocol it speaks.
reply({"agent": "m1studio", "protocol": PROTOCOL})
for line in sys.stdin.buffer:
    try:
        request = json.loads(line)
        request["id"]
    except (ValueError, TypeError, KeyError) as error:
        print("unreadable request: %s" % error, file=sys.stderr, flush=True)
        continue
    threading.Thread(target=answer, args=(request,)).start()
