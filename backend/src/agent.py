# m1studio's agent in a node's container. It reads commands on standard input, one JSON object
# per line ({"id", "argv", "user", "stdin", "inline"}), runs each at once as its user, as
# `docker exec` would, and writes back one JSON line per command ({"id", "code", "stdout",
# "stderr"}) when it ends. An "inline" command is a Python program with a function
# `main(argv, out, err)`, which the agent loads once and calls itself, as root, saving the
# program's start. At the end of its input it waits for the commands still running, then exits.
import io
import json
import os
import pwd
import runpy
import subprocess
import sys
import threading

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


def run(request):
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
    code = child.wait()
    # A daemon the command started may keep its output open: what came so far is the output.
    for reader in readers:
        reader.join(2)
    stdout = b"".join(out).decode(errors="replace")
    stderr = b"".join(err).decode(errors="replace")
    return (code if code >= 0 else 128 - code), stdout, stderr


def answer(request):
    # Every request is answered, whatever happens: its sender waits for it.
    try:
        code, stdout, stderr = (inline if request.get("inline") else run)(request)
    except Exception as error:
        code, stdout, stderr = 126, "", "m1studio's agent could not run it: %r" % error
    reply({"id": request["id"], "code": code, "stdout": stdout, "stderr": stderr})


for line in sys.stdin.buffer:
    try:
        request = json.loads(line)
        request["id"]
    except (ValueError, TypeError, KeyError) as error:
        print("unreadable request: %s" % error, file=sys.stderr, flush=True)
        continue
    threading.Thread(target=answer, args=(request,)).start()
