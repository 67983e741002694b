"""Kiln against the Flask + Celery + Redis stack it replaces, in one run on one machine.

Started by deploy/bench.sh (which builds Kiln and the peer's venv). For each setup -- `kiln serve`;
`kiln api` + 2 `kiln worker`; the peer (gunicorn + Celery prefork + Pillow) -- it starts a private
redis-server and the processes, then drives every workload with the same client, `kiln bench`:

  idle      one client, one job at a time: p50 latency submit -> downloaded PNG
  load      CLIENTS clients: throughput, latency p50/p99, CPU per job (all the setup's processes, Redis
            included, from /proc), peak memory (sum of each process's peak RSS)
  commands  Redis commands per job, counted with MONITOR during another CLIENTS-client run (calls made
            inside scripts not counted: a script is one round trip)

It prints a Markdown report (BENCHMARKS.md keeps the last one) and exits non-zero if a job failed.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TICKS = os.sysconf("SC_CLK_TCK")

CROP = {"crop": {"x": 112, "y": 84, "width": 800, "height": 600},
        "resize": {"width": 300, "height": 300}, "filter": "lanczos3"}
PLOT = {"title": "bench", "width": 400, "height": 300, "series": [{"name": "s", "x": list(range(50)),
                                      "y": [((i * 37) % 23) / 4 for i in range(50)]}]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"bench: {url} did not come up in {seconds} s")


class Setup:
    """A private redis-server plus the processes of one setup; stops them all on exit."""

    def __init__(self, name, workdir):
        self.name, self.dir = name, tempfile.mkdtemp(dir=workdir, prefix=name.replace(" ", "-"))
        self.redis_port = free_port()
        self.procs = []
        self.start(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", self.dir], "redis")
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.05)

    def start(self, argv, label, env=None, cwd=None):
        log = open(os.path.join(self.dir, f"{label}.log"), "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        self.procs.append(proc)
        return proc

    def pids(self):
        """Every live process of the setup: the ones started and all their descendants."""
        children = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(entry))
                except (OSError, IndexError, ValueError):
                    pass
        found, todo = [], [p.pid for p in self.procs if p.poll() is None]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def cpu_seconds(self):
        """CPU time used so far by the setup's processes (their reaped children included)."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
            except (OSError, ValueError):
                pass
        return total / TICKS

    def peak_rss_mb(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    total += int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
            except (OSError, AttributeError):
                pass
        return total / 1024

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


def kiln_bench(args, url, kind, params, jobs, clients, warmup=0, input_file=None, expect=None):
    argv = [args.kiln, "bench", kind, "--url", url, "--params", json.dumps(params), "-n", str(jobs),
            "-c", str(clients), "--warmup", str(warmup), "--json"]
    if input_file:
        argv += ["--input", input_file]
    if expect:
        argv += ["--expect", expect]
    out = subprocess.run(argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench: kiln bench {kind} against {url} failed:\n{out.stdout}{out.stderr}")
    return json.loads(out.stdout)


def commands_per_job(setup, run):
    """Redis commands sent by clients (not by scripts) per job, during `run()` (which returns its job count)."""
    # Into a file, not a pipe nobody reads while the run goes on; stdbuf, so that terminate() loses nothing.
    path = os.path.join(setup.dir, "monitor.txt")
    with open(path, "w") as out:
        monitor = subprocess.Popen(["stdbuf", "-oL", "redis-cli", "-p", str(setup.redis_port), "monitor"],
                                   stdout=out)
        time.sleep(0.3)
        jobs = run()
        time.sleep(0.3)
        monitor.terminate()
        monitor.wait()
    with open(path) as f:
        lines = f.read().splitlines()
    names = Counter()
    for line in lines:
        m = re.match(r'^[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"', line)
        if m and m.group(1) != "lua":
            names[m.group(2).lower()] += 1
    total = sum(names.values())
    top = ", ".join(f"{name} {count / jobs:.1f}" for name, count in names.most_common(6))
    return total / jobs, top


def run_seconds(url, kind):
    """(sum, count) of Kiln's own `kiln_run_seconds` for `kind` so far; None for the peer (no such metric)."""
    try:
        text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith("kiln_run_seconds_sum{") and f'kind="{kind}"' in line:
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("kiln_run_seconds_count{") and f'kind="{kind}"' in line:
            count += float(line.rsplit(" ", 1)[1])
    return total, count


def measure(args, setup, url, workloads):
    rows = []
    for kind, params, input_file, expect, jobs in workloads:
        common = dict(input_file=input_file, expect=expect)
        kiln_bench(args, url, kind, params, 20, 2, warmup=5, **common)
        before = run_seconds(url, kind)
        idle = kiln_bench(args, url, kind, params, args.idle_jobs, 1, **common)
        after = run_seconds(url, kind)
        # The idle jobs' own mean: the histogram also holds the warm-up jobs run before.
        run_ms = None
        if before and after and after[1] > before[1]:
            run_ms = (after[0] - before[0]) / (after[1] - before[1]) * 1000
        cpu = setup.cpu_seconds()
        load = kiln_bench(args, url, kind, params, jobs, args.clients, **common)
        cpu = setup.cpu_seconds() - cpu
        per_job, top = commands_per_job(
            setup, lambda: kiln_bench(args, url, kind, params, min(jobs, 200), args.clients, **common)["jobs"])
        rows.append({
            "setup": setup.name, "kind": kind, "jobs": load["jobs"], "jobs_per_sec": load["jobs_per_sec"],
            "p50": load["latency_ms"]["p50"], "p99": load["latency_ms"]["p99"],
            "idle_p50": idle["latency_ms"]["p50"], "run_ms": run_ms,
            "cpu_ms": cpu / load["jobs"] * 1000, "commands": per_job, "top": top,
        })
        print(f"bench: {setup.name} {kind}: {load['jobs_per_sec']:.0f} jobs/s", file=sys.stderr)
    peak = setup.peak_rss_mb()
    for row in rows:
        row["peak_mb"] = peak
    return rows


def kiln_setups(args, workdir, kinds_dir):
    env = {"KILN_LOG": "warn", "KILN_DATA_DIR": os.path.join(workdir, "kiln-data")}
    for name in ("kiln serve", "kiln api + 2 workers"):
        setup = Setup(name, workdir)
        env["KILN_REDIS_URL"] = f"redis://127.0.0.1:{setup.redis_port}"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        if name == "kiln serve":
            setup.start([args.kiln, "serve", "--dev", "--listen", f"127.0.0.1:{port}", "--kinds-dir", kinds_dir], "kiln",
                        env)
        else:
            setup.start([args.kiln, "api", "--dev", "--listen", f"127.0.0.1:{port}", "--kinds-dir", kinds_dir], "api", env)
            for i in range(2):
                setup.start([args.kiln, "worker"], f"worker{i}", env)
        yield setup, url


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiln", required=True, help="the kiln binary (release build)")
    parser.add_argument("--kinds-dir", required=True, help="holds noop.wasm/noop.json (guest-hostile)")
    parser.add_argument("--input", required=True, help="the crop workload's 1024x768 PNG")
    parser.add_argument("--venv", required=True, help="the peer's virtualenv")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per Kiln load run (the peer: a third)")
    parser.add_argument("--idle-jobs", type=int, default=40)
    args = parser.parse_args()
    args.kiln, args.venv = os.path.abspath(args.kiln), os.path.abspath(args.venv)
    workdir = tempfile.mkdtemp(prefix="kiln-bench-")
    crop = ("crop", CROP, args.input, "300x300")
    rows = []
    try:
        for setup, url in kiln_setups(args, workdir, args.kinds_dir):
            try:
                wait_for(f"{url}/readyz")
                rows += measure(args, setup, url, [
                    (*crop, args.jobs), ("plot", PLOT, None, None, args.jobs),
                    ("noop", {"mode": "noop"}, None, "1x1", args.jobs * 4)])
            finally:
                setup.stop()
        setup = Setup("flask + celery", workdir)
        try:
            env = {"BENCH_REDIS_URL": f"redis://127.0.0.1:{setup.redis_port}/0"}
            port = free_port()
            bin_dir = os.path.join(args.venv, "bin")
            setup.start([os.path.join(bin_dir, "gunicorn"), "-w", "2", "-k", "gthread", "--threads", "16",
                         "-b", f"127.0.0.1:{port}", "peer:api"], "gunicorn", env, cwd=HERE)
            setup.start([os.path.join(bin_dir, "celery"), "-A", "peer", "worker", "--concurrency", "2",
                         "--loglevel", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                        "celery", env, cwd=HERE)
            url = f"http://127.0.0.1:{port}"
            time.sleep(3)
            rows += measure(args, setup, url, [(*crop, max(args.jobs // 3, 50)),
                                               ("noop", {}, None, "1x1", max(args.jobs // 3, 50))])
        finally:
            setup.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(rows)


def report(rows):
    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    print("| setup | kind | jobs | jobs/s | p50 ms | p99 ms | idle p50 ms | run in sandbox ms | CPU ms/job "
          "| Redis commands/job | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setup']} | {r['kind']} | {r['jobs']} | {r['jobs_per_sec']:.0f} | {r['p50']:.1f} "
              f"| {r['p99']:.1f} | {r['idle_p50']:.1f} | {fmt(r['run_ms'], '.1f')} | {r['cpu_ms']:.2f} "
              f"| {r['commands']:.1f} | {r['peak_mb']:.0f} |")
    print()
    print("Redis commands per job by name:")
    print()
    for r in rows:
        print(f"- {r['setup']}, {r['kind']}: {r['top']}")
    by = {(r["setup"], r["kind"]): r for r in rows}
    peer = by.get(("flask + celery", "crop"))
    if peer:
        print()
        for setup in ("kiln serve", "kiln api + 2 workers"):
            if (setup, "crop") in by:
                ratio = by[(setup, "crop")]["jobs_per_sec"] / peer["jobs_per_sec"]
                print(f"- crop throughput, {setup} / flask + celery: {ratio:.1f}x")


if __name__ == "__main__":
    main()
