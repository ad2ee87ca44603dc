#!/usr/bin/env python3
"""CPU per request of two Switchboard builds, loaded at the same time.

On a shared 2-core machine the CPU one build needs per request drifts by a third within a minute,
so two builds measured one after the other differ by more than most changes do. Here both run at
once, each the direct target of run.py (the local worker over the same fake upstream), each under
its own wrk; whatever slows the machine down slows both. Each round prints both builds' CPU
milliseconds per request (from /proc) and their ratio; the median ratio is the answer.

Usage: python3 bench/ab.py BASE.jar [CANDIDATE.jar] [--connections 32] [--duration 5] [--rounds 8] [--warmup 40]
(CANDIDATE defaults to app/target/switchboard.jar.)
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import GC_FLAGS, JAVA, SWITCHBOARD_JAR, Proc, ensure_jars, ensure_tools, median, netty_unsafe, wait_ready, wrk_script, CHAT_BODY  # noqa: E402

PORTS = {"upstream": 19110, "base": 19111, "candidate": 19112}


def start_server(name, jar, workdir, jvm):
    config = os.path.join(workdir, name + ".yaml")
    with open(config, "w") as f:
        f.write(f"host: 127.0.0.1\nport: {PORTS[name]}\nqueue_size: 20000\ndata_dir: {workdir}/{name}-data\n"
                f"upstreams:\n  - url: http://127.0.0.1:{PORTS['upstream']}/v1\n    max_concurrency: 20000\n")
    return Proc(name, jvm + ["-jar", jar, "server", "--config", config], workdir)


def load_both(script, connections, duration):
    """Both wrks at once; the number of requests each completed."""
    runs = [subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", script,
                              f"http://127.0.0.1:{PORTS[name]}/v1/chat/completions"], stdout=subprocess.PIPE, text=True)
            for name in ("base", "candidate")]
    outputs = [run.communicate(timeout=duration + 60)[0] for run in runs]
    return [int(re.search(r"(\d+) requests in", out).group(1)) for out in outputs]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base")
    parser.add_argument("candidate", nargs="?", default=SWITCHBOARD_JAR)
    parser.add_argument("--connections", type=int, default=32, help="wrk connections per build (default 32)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per round (default 5)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=40,
                        help="seconds of load on both before measuring (default 40: two JVMs share the cores while they compile)")
    options = parser.parse_args()

    ensure_tools()
    fake_jar = ensure_jars()
    workdir = tempfile.mkdtemp(prefix="switchboard-ab-")
    unsafe = netty_unsafe()
    jvm = [JAVA, "-Xmx128m", *GC_FLAGS.split(), *unsafe]
    procs = {}
    try:
        procs["upstream"] = Proc("upstream", [JAVA, *unsafe, "-jar", fake_jar, "--port", str(PORTS["upstream"]), "--tokens", "16"],
                                 workdir)
        wait_ready(f"http://127.0.0.1:{PORTS['upstream']}/v1/models")
        procs["base"] = start_server("base", options.base, workdir, jvm)
        procs["candidate"] = start_server("candidate", options.candidate, workdir, jvm)
        for name in ("base", "candidate"):
            wait_ready(f"http://127.0.0.1:{PORTS[name]}/v1/chat/completions", {"Content-Type": "application/json"},
                       CHAT_BODY.encode())
        script = wrk_script(workdir, "chat", {})
        load_both(script, options.connections, options.warmup)
        ratios = []
        for round_no in range(options.rounds):
            before = [procs[name].cpu_seconds() for name in ("base", "candidate")]
            requests = load_both(script, options.connections, options.duration)
            after = [procs[name].cpu_seconds() for name in ("base", "candidate")]
            per_request = [(a - b) * 1000 / n for a, b, n in zip(after, before, requests)]
            ratios.append(per_request[1] / per_request[0])
            print(f"round {round_no + 1}: base {per_request[0]:.4f} ms/req ({requests[0]} req), "
                  f"candidate {per_request[1]:.4f} ms/req ({requests[1]} req), ratio {ratios[-1]:.3f}", flush=True)
        print(f"candidate/base CPU per request: median {median(ratios):.3f} over {len(ratios)} rounds "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
    finally:
        for proc in procs.values():
            proc.stop()


if __name__ == "__main__":
    main()
