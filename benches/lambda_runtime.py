#!/usr/bin/env python3
"""A minimal Lambda Runtime API that times a function binary: cold start and invocations.

Starts the Runtime API on 127.0.0.1, then the binary (so the clock starts at process spawn),
hands it the given events one by one, and prints one JSON line:
  init_ms            spawn -> the function's first GET /invocation/next (its init is done)
  first_response_ms  spawn -> the answer to the first event (the cold start a caller sees)
  invocations        per event: ms from handing it out to the answer, and response or error
  peak_rss_mb        the function's VmHWM just before it is stopped
The function's environment is this process's (set AWS_* and TABLE_NAME before calling).

usage: lambda_runtime.py BINARY EVENT.json [EVENT.json...]
"""
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class State:
    def __init__(self, events):
        self.events = events
        self.next_index = 0
        self.started = None
        self.init_at = None
        self.handed_at = {}
        self.results = []
        self.done = threading.Event()
        self.lock = threading.Lock()


def handler_for(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, code, body=b"{}", headers=()):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != f"{PREFIX}/invocation/next":
                return self.reply(404)
            with state.lock:
                now = time.perf_counter()
                if state.init_at is None:
                    state.init_at = now
                index = state.next_index
                state.next_index += 1
            if index >= len(state.events):
                state.done.wait()
                return self.reply(500)
            request_id = f"bench-{index}"
            state.handed_at[request_id] = time.perf_counter()
            body = json.dumps(state.events[index]).encode()
            deadline = str(int(time.time() * 1000) + 900_000)
            self.reply(200, body, [
                ("Lambda-Runtime-Aws-Request-Id", request_id),
                ("Lambda-Runtime-Deadline-Ms", deadline),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:s3-import"),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
            ])

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            parts = self.path[len(PREFIX):].strip("/").split("/")
            if len(parts) == 3 and parts[0] == "invocation":
                now = time.perf_counter()
                request_id, outcome = parts[1], parts[2]
                with state.lock:
                    state.results.append({
                        "request_id": request_id,
                        "outcome": outcome,
                        "answered_ms": round((now - state.started) * 1000, 1),
                        "duration_ms": round((now - state.handed_at[request_id]) * 1000, 1),
                        "body": body.decode(errors="replace")[:300],
                    })
                    if len(state.results) == len(state.events):
                        state.done.set()
            self.reply(202)

    return Handler


def peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None


def main():
    binary, event_paths = sys.argv[1], sys.argv[2:]
    events = [json.load(open(p)) for p in event_paths]
    state = State(events)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    server.handle_error = lambda request, address: None  # the function killed mid-poll
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
    env.setdefault("AWS_LAMBDA_FUNCTION_NAME", "s3-import")
    env.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    env.setdefault("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    log = open(os.environ.get("LAMBDA_LOG", os.devnull), "w")
    state.started = time.perf_counter()
    child = subprocess.Popen([binary], env=env, stdout=log, stderr=log)
    finished = state.done.wait(timeout=float(os.environ.get("LAMBDA_TIMEOUT", "900")))
    rss = peak_rss_mb(child.pid)
    child.kill()
    child.wait()
    server.shutdown()
    first = state.results[0]["answered_ms"] if state.results else None
    print(json.dumps({
        "bench": "lambda",
        "init_ms": round((state.init_at - state.started) * 1000, 1) if state.init_at else None,
        "first_response_ms": first,
        "peak_rss_mb": rss,
        "invocations": state.results,
        "all_answered": finished,
    }))
    sys.exit(0 if finished and all(r["outcome"] == "response" for r in state.results) else 1)


if __name__ == "__main__":
    main()
