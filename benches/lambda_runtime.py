#!/usr/bin/env python3
"""A minimal Lambda Runtime API that times a function binary: cold start and invocations.

Starts the Runtime API on 127.0.0.1, then the binary (so the clock starts at process spawn),
hands it the given events one by one (one warm process, as Lambda reuses an instance), and
prints one JSON line:
  init_ms            spawn -> the function's first GET /invocation/next (its init is done)
  first_response_ms  spawn -> the answer to the first event (the cold start a caller sees)
  invocations        per event: wall ms from handing it out to the answer, the function's CPU
                     ms (user+sys) meanwhile, items written (from the checkpoint or report),
                     read+validate ms (from the logs), outcome, the response's start
  cpu_s, peak_rss_mb the function process's user+sys CPU seconds and VmHWM, just before it stops
  items, cpu_us_per_item, items_per_s   over the whole chain (when items are known)

Continuations (S3's role): with LAMBDA_CHAIN_BUCKET set (boto3 needed, endpoint from
AWS_ENDPOINT_URL), after each answer the bucket is listed; a checkpoint under `continuations/`
becomes the next invocation's event (an ObjectCreated:Put record for its key), until none is
left; then the report under `reports/` is read (status, invocations).

Each invocation gets Lambda-Runtime-Deadline-Ms = hand-out + LAMBDA_DEADLINE_S (default 900,
Lambda's maximum). An invocation still unanswered 10 s after its deadline is a timeout: the
function is killed, as Lambda would, and the run fails.

Logs: the function's stdout+stderr go to LAMBDA_LOG (default: discarded), each line prefixed
with the seconds since spawn (the Lambda log format has no time). With RUST_LOG=info,s3_import=debug
the function logs `batch written` per batch; read+validate ms of an invocation (wall) is then
first batch - `invocation started` - one batch's write time (the median gap between batches).
Each invocation's answer is also printed to stderr as it comes (progress on long runs).

The function's environment is this process's (set AWS_* and TABLE_NAME before calling).

usage: lambda_runtime.py BINARY EVENT.json [EVENT.json...]
"""
import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class State:
    def __init__(self, deadline_s):
        self.deadline_s = deadline_s
        self.to_hand_out = queue.Queue()   # (request_id, event)
        self.answers = queue.Queue()       # result dicts
        self.child = None
        self.started = None
        self.init_at = None
        self.handed = {}                   # request_id -> (perf_counter, cpu_s)
        self.current = None                # request_id being run, for the log reader
        self.log_lines = {}                # request_id -> [(t, line)]
        self.lock = threading.Lock()


def cpu_seconds(pid):
    """user+sys CPU seconds of a process, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


def peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None


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
                if state.init_at is None:
                    state.init_at = time.perf_counter()
            request_id, event = state.to_hand_out.get()
            if request_id is None:  # the run is over; the function is about to be stopped
                return self.reply(500)
            with state.lock:
                state.current = request_id
                state.handed[request_id] = (time.perf_counter(), cpu_seconds(state.child.pid) if state.child else None)
            body = json.dumps(event).encode()
            deadline = str(int(time.time() * 1000 + state.deadline_s * 1000))
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
                handed_at, cpu_at = state.handed.get(request_id, (now, None))
                cpu_now = cpu_seconds(state.child.pid)
                state.answers.put({
                    "request_id": request_id,
                    "outcome": outcome,
                    "answered_ms": round((now - state.started) * 1000, 1),
                    "duration_ms": round((now - handed_at) * 1000, 1),
                    "cpu_ms": round((cpu_now - cpu_at) * 1000) if cpu_now is not None and cpu_at is not None else None,
                    "body": body.decode(errors="replace")[:300],
                })
            self.reply(202)

    return Handler


def read_logs(state, pipe, log):
    for raw in pipe:
        t = time.perf_counter() - state.started
        line = raw.decode(errors="replace").rstrip("\n")
        log.write(f"{t:10.3f} {line}\n")
        with state.lock:
            state.log_lines.setdefault(state.current, []).append((t, line))
    log.flush()


def validate_ms(lines):
    """read+validate ms of one invocation: `invocation started` to the first `batch written`,
    less one batch's write time (the median gap between the first 21 batches)."""
    started = next((t for t, l in lines if "invocation started" in l), None)
    batches = [t for t, l in lines if "batch written" in l][:21]
    if started is None or len(batches) < 2:
        return None
    gaps = sorted(b - a for a, b in zip(batches, batches[1:]))
    return max(0, round((batches[0] - started - gaps[len(gaps) // 2]) * 1000))


def created_event(bucket, key):
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "reimport-continuations",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": urllib.parse.quote_plus(key, safe="/"), "size": 1}},
    }]}


class Bucket:
    """S3's side of the chain: the checkpoints and reports in the function's bucket."""

    def __init__(self, name):
        import boto3
        self.name = name
        self.s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
                               region_name=os.environ.get("AWS_REGION", "us-east-1"))

    def keys(self, prefix):
        keys, token = [], None
        while True:
            args = {"Bucket": self.name, "Prefix": prefix}
            if token:
                args["ContinuationToken"] = token
            page = self.s3.list_objects_v2(**args)
            keys += [o["Key"] for o in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                return sorted(keys)

    def json(self, key):
        return json.loads(self.s3.get_object(Bucket=self.name, Key=key)["Body"].read())


def main():
    binary, event_paths = sys.argv[1], sys.argv[2:]
    events = [json.load(open(p)) for p in event_paths]
    state = State(float(os.environ.get("LAMBDA_DEADLINE_S", "900")))
    bucket = Bucket(os.environ["LAMBDA_CHAIN_BUCKET"]) if os.environ.get("LAMBDA_CHAIN_BUCKET") else None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # the function killed mid-poll
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
    env.setdefault("AWS_LAMBDA_FUNCTION_NAME", "s3-import")
    env.setdefault("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    env.setdefault("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    log = open(os.environ.get("LAMBDA_LOG", os.devnull), "w", buffering=1)
    state.started = time.perf_counter()
    state.child = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    reader = threading.Thread(target=read_logs, args=(state, state.child.stdout, log), daemon=True)
    reader.start()

    results, report, finished, pending = [], None, True, list(events)
    items_before = 0
    while pending:
        request_id = f"bench-{len(results)}"
        state.to_hand_out.put((request_id, pending.pop(0)))
        try:
            result = state.answers.get(timeout=state.deadline_s + 10 + (5 if not results else 0))
        except queue.Empty:
            results.append({"request_id": request_id, "outcome": "timeout (killed after the deadline)"})
            finished = False
            break
        time.sleep(0.05)  # the log lines written just before the answer
        with state.lock:
            result["validate_ms"] = validate_ms(state.log_lines.get(request_id, []))
        results.append(result)
        if bucket is None or result["outcome"] != "response":
            continue
        checkpoints = bucket.keys("continuations/")
        if checkpoints:
            if len(checkpoints) > 1:
                print(f"lambda_runtime.py: more than one checkpoint: {checkpoints}", file=sys.stderr)
                finished = False
                break
            written = bucket.json(checkpoints[0]).get("items_written")
            result["checkpoint"] = checkpoints[0]
            pending.append(created_event(bucket.name, checkpoints[0]))
        else:
            reports = bucket.keys("reports/")
            report = bucket.json(reports[-1]) if reports else None
            written = (report or {}).get("daily_items_written")
        if written is not None:
            result["items"] = written - items_before
            items_before = written
        print(json.dumps(result), file=sys.stderr, flush=True)  # progress, one line per invocation

    cpu = cpu_seconds(state.child.pid)
    rss = peak_rss_mb(state.child.pid)
    state.child.kill()
    state.child.wait()
    state.to_hand_out.put((None, None))
    server.shutdown()
    reader.join(timeout=2)
    first = results[0].get("answered_ms") if results else None
    items = sum(r.get("items", 0) for r in results)
    wall_s = sum(r.get("duration_ms", 0) for r in results) / 1000
    out = {
        "bench": "lambda",
        "init_ms": round((state.init_at - state.started) * 1000, 1) if state.init_at else None,
        "first_response_ms": first,
        "peak_rss_mb": rss,
        "cpu_s": round(cpu, 2) if cpu is not None else None,
        "deadline_s": state.deadline_s,
        "invocations": results,
        "all_answered": finished,
    }
    if items:
        out.update({
            "items": items,
            "invocations_wall_s": round(wall_s, 1),
            "items_per_s": round(items / wall_s) if wall_s else None,
            "cpu_us_per_item": round(cpu * 1e6 / items, 1) if cpu is not None else None,
        })
    if report is not None:
        out["report"] = {"status": report.get("status"),
                         "invocations": report.get("invocations"),
                         "daily_items_written": report.get("daily_items_written")}
    print(json.dumps(out))
    ok = finished and all(r["outcome"] == "response" for r in results)
    if bucket is not None and (report is None or out["report"]["status"] != "imported"):
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
