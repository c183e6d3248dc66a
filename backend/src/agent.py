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
    answer = {"id": request["id"], "code": 126, "stdout": "", "stderr": ""}
    path = request["argv"][0]
    try:
        with loading:
            changed = os.stat(path).st_mtime_ns
            loaded = programs.get(path)
            if loaded is None or loaded[0] != changed:
                loaded = programs[path] = (changed, runpy.run_path(path, run_name="program"))
        main = loaded[1]["main"]
    except FileNotFoundError:
        answer["code"] = 127
        answer["stderr"] = "%s: not found" % path
        return reply(answer)
    except Exception as error:
        answer["stderr"] = "%s cannot be loaded: %r" % (path, error)
        return reply(answer)
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(request["argv"], out, err)
        answer["code"] = code if isinstance(code, int) else 0
    except Exception as error:
        answer["code"] = 1
        err.write("%s failed: %r\n" % (path, error))
    answer["stdout"], answer["stderr"] = out.getvalue(), err.getvalue()
    reply(answer)


def run(request):
    if request.get("inline"):
        return inline(request)
    answer = {"id": request["id"], "code": 126, "stdout": "", "stderr": ""}
    argv, stdin = request["argv"], request.get("stdin")
    try:
        user = pwd.getpwnam(request["user"])
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
    except KeyError:
        answer["stderr"] = "no user named %s in this container" % request["user"]
        return reply(answer)
    except OSError as error:
        answer["code"] = 127 if isinstance(error, FileNotFoundError) else 126
        answer["stderr"] = "%s: %s" % (argv[0] if argv else "", error.strerror)
        return reply(answer)
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
    answer["code"] = code if code >= 0 else 128 - code
    answer["stdout"] = b"".join(out).decode(errors="replace")
    answer["stderr"] = b"".join(err).decode(errors="replace")
    reply(answer)


for line in sys.stdin.buffer:
    try:
        request = json.loads(line)
    except ValueError as error:
        print("unreadable request: %s" % error, file=sys.stderr, flush=True)
        continue
    threading.Thread(target=run, args=(request,)).start()
