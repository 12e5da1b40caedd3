#!/usr/bin/env python3
"""btest vs iperf3 on loopback, side by side (driven by benchmarks/loopback.sh).

Every case runs both tools in the same invocation, alternating which goes first on each
repetition, and prints per case the median of each measure and the ratio btest/iperf3. One
btest server (btest -s --json -v) and one iperf3 server (iperf3 -s -J) run for the whole
invocation; their CPU time is read from /proc around every run, the clients' from wait4().

Measures (both tools the same way):
  TCP          delivered Gbit/s (receiver's byte count over the test)
  UDP          delivered datagrams/s and payload Gbit/s (payload bits, so that btest's
               header-inclusive counts and iperf3's payload counts compare), loss %
  UDP paced    achieved rate error vs the requested rate (each tool against its own meaning of
               the rate: btest counts whole IP datagrams, iperf3 payload), standard deviation
               and largest deviation of the receiver's per-second rates
  CPU          seconds of CPU per GB delivered, client and server

Client sends for every case except "tcp_rx" (server sends) and "tcp_both".

TCP cases also run `iperf3 -Z` (sendfile), a column of its own. "udp_nooff" is the per-datagram
figure: btest with --no-gso on the client and --no-gro on its server (a server of its own),
iperf3 as always (it has no offloads). --veth-cases runs a second table over a veth pair with
an MTU of 1500 between two network namespaces (benchmarks/netns.sh; root only), where
segmentation is real.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = {
    # id: (title, btest args, iperf3 args, kind)
    "tcp_tx": ("TCP 1 conn, client->server", ["-t"], [], "tcp"),
    "tcp_rx": ("TCP 1 conn, server->client", ["-r"], ["-R"], "tcp"),
    "tcp_both": ("TCP 1 conn, both directions", ["-t", "-r"], ["--bidir"], "tcp"),
    "tcp_p4": ("TCP 4 conns, client->server", ["-t", "--connection-count", "4"], ["-P", "4"], "tcp"),
    "udp_unlimited": ("UDP unlimited, 1500 B datagrams", ["-u", "-t"], ["-u", "-b", "0", "-l", "1472"], "udp"),
    "udp_nooff": ("UDP 1500 B, no GSO/GRO", ["-u", "-t", "--no-gso"], ["-u", "-b", "0", "-l", "1472"], "udp"),
    "udp_64": ("UDP unlimited, 64 B datagrams", ["-u", "-t", "--tx-size", "64"], ["-u", "-b", "0", "-l", "36"], "udp"),
    "udp_100m": ("UDP paced 100 Mbit/s", ["-u", "-t", "-b", "100M"], ["-u", "-b", "100M", "-l", "1472"], "paced"),
    "udp_1g": ("UDP paced 1 Gbit/s", ["-u", "-t", "-b", "1G"], ["-u", "-b", "1G", "-l", "1472"], "paced"),
}
PAYLOAD = {"udp_64": 36}
# Flags of the btest server a case needs (each set gets a server of its own).
SERVER_FLAGS = {"udp_nooff": ["--no-gro"]}
NETNS_ADDR = "198.18.0.1"  # benchmarks/netns.sh: the server's namespace
TARGET = {"udp_100m": 100e6, "udp_1g": 1e9}
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """utime + stime of a process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_client(cmd, timeout):
    """Runs a client; returns (stdout, cpu seconds, exit status)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise RuntimeError(f"timeout: {' '.join(cmd)}")
    # wait4 already reaped the child inside communicate(); its rusage is in RUSAGE_CHILDREN.
    return out, err, p.returncode


class children_cpu:
    def __enter__(self):
        r = os.times()
        self.start = r.children_user + r.children_system
        return self

    def __exit__(self, *a):
        r = os.times()
        self.seconds = r.children_user + r.children_system - self.start


class Server:
    def __init__(self, cmd, log, port=None):
        self.port = port
        self.log_path = log
        self.log = open(log, "w")
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.5)
        if self.p.poll() is not None:
            raise RuntimeError(f"server did not start: {' '.join(cmd)}\n{open(log).read()}")

    def offset(self):
        self.log.flush()
        return os.path.getsize(self.log_path)

    def lines_since(self, off):
        with open(self.log_path) as f:
            f.seek(off)
            return f.read().splitlines()

    def cpu(self):
        return proc_cpu(self.p.pid)

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


class ServerPool:
    """btest servers by (binary, flags), started on first use, each on ports of its own."""

    def __init__(self, a, work):
        self.a, self.work, self.servers, self.next_port = a, work, {}, a.port

    def get(self, binary, flags):
        key = (binary, tuple(flags))
        if key not in self.servers:
            port = self.next_port
            if port <= self.a.iperf_port <= port + 200:  # its UDP ports would hold iperf3's
                port = self.a.iperf_port + 1
            self.next_port = port + 250
            a = self.a
            listen = NETNS_ADDR if a.netns else "127.0.0.1"
            cmd = a.srv_prefix + [binary, "-s", "-P", str(port), "--listen", listen, "--listen6", "none",
                                  "--udp-port-start", str(port + 1), "--udp-port-end", str(port + 200), "--json", "-v"]
            cmd += a.server_args.split() + list(flags)
            log = os.path.join(self.work, f"btest-server-{len(self.servers)}.jsonl")
            self.servers[key] = Server(cmd, log, port)
        return self.servers[key]

    def stop(self):
        for srv in self.servers.values():
            srv.stop()


def full_seconds(intervals):
    return [bps for (secs, bps) in intervals if secs >= 0.9]


def btest_run(a, case, pool, binary=None, extra=()):
    title, args, _, kind = CASES[case]
    srv = pool.get(binary or a.btest, SERVER_FLAGS.get(case, []) + list(extra))
    cmd = a.cli_prefix + [binary or a.btest, "-c", a.addr, "-P", str(srv.port), "-d", str(a.duration), "--json", "-q"] + args
    cmd += list(extra)
    off = srv.offset()
    s0 = srv.cpu()
    with children_cpu() as cc:
        out, err, rc = run_client(cmd, a.duration + 30)
    time.sleep(0.3)  # the server's summary follows the client's end
    s1 = srv.cpu()
    if rc != 0:
        raise RuntimeError(f"btest exit {rc}: {' '.join(cmd)}\n{err}")
    summ = [json.loads(l) for l in out.splitlines() if l.startswith("{") and '"summary"' in l]
    if not summ:
        raise RuntimeError(f"no btest summary: {out}\n{err}")
    cs = summ[-1]
    srv_lines = [json.loads(l) for l in srv.lines_since(off) if l.startswith("{")]
    ss = [l for l in srv_lines if l.get("type") == "summary"]
    if not ss:
        raise RuntimeError("no btest server summary")
    ss = ss[-1]
    r = {"client_cpu": cc.seconds, "server_cpu": s1 - s0}
    dur = ss["duration_s"] or cs["duration_s"]
    if kind == "tcp":
        # Delivered: what the receivers counted (TCP data bytes).
        delivered = 0
        if "-t" in args:
            delivered += ss["rx_bytes"]
        if "-r" in args:
            delivered += cs["rx_bytes"]
        r["bytes"] = delivered
        r["gbps"] = delivered * 8 / cs["duration_s"] / 1e9
    else:
        payload = PAYLOAD.get(case, 1472)
        pk = ss["rx_packets"]
        r["bytes"] = pk * payload
        r["pps"] = pk / dur
        r["gbps"] = pk * payload * 8 / dur / 1e9
        r["loss"] = 100.0 * ss["lost_packets"] / max(1, pk + ss["lost_packets"])
        r["sent_pps"] = cs["tx_packets"] / cs["duration_s"]
        if kind == "paced":
            target = TARGET[case]
            per_s = full_seconds([(l["time_s"] - l["start_s"], l["bits_per_second"]) for l in srv_lines
                                  if l.get("type") == "interval" and l.get("direction") == "rx"])
            r.update(paced_stats(ss["rx_bits_per_second"], per_s, target))
    return r


def paced_stats(avg, per_s, target):
    r = {"rate_err": 100.0 * (avg - target) / target}
    if len(per_s) >= 2:
        r["sd"] = 100.0 * statistics.pstdev(per_s) / target
    elif per_s:
        r["sd"] = 0.0
    if per_s:
        r["maxdev"] = max(100.0 * abs(x - target) / target for x in per_s)
    return r


def iperf_run(a, case, srv, extra=()):
    title, _, args, kind = CASES[case]
    args = args + list(extra)
    cmd = a.cli_prefix + [a.iperf3, "-c", a.addr, "-p", str(a.iperf_port), "-t", str(a.duration), "-J", "--get-server-output"] + args
    s0 = srv.cpu()
    with children_cpu() as cc:
        out, err, rc = run_client(cmd, a.duration + 30)
    time.sleep(0.3)
    s1 = srv.cpu()
    d = json.loads(out) if out.strip() else {}
    if rc != 0 or "error" in d:
        raise RuntimeError(f"iperf3 exit {rc}: {' '.join(cmd)}\n{d.get('error', err)}")
    r = {"client_cpu": cc.seconds, "server_cpu": s1 - s0}
    end = d["end"]
    if kind == "tcp":
        if "--bidir" in args:
            delivered = end["sum_received"]["bytes"] + end["sum_received_bidir_reverse"]["bytes"]
            secs = end["sum_received"]["seconds"]
        else:
            delivered = end["sum_received"]["bytes"]
            secs = end["sum_received"]["seconds"]
        r["bytes"] = delivered
        r["gbps"] = delivered * 8 / secs / 1e9
    else:
        payload = PAYLOAD.get(case, 1472)
        rec = end["sum_received"]
        pk = rec["packets"] - rec["lost_packets"]
        secs = rec["seconds"]
        r["bytes"] = pk * payload
        r["pps"] = pk / secs
        r["gbps"] = pk * payload * 8 / secs / 1e9
        r["loss"] = rec["lost_percent"]
        r["sent_pps"] = end["sum_sent"]["packets"] / end["sum_sent"]["seconds"] if "packets" in end["sum_sent"] else rec["packets"] / secs
        if kind == "paced":
            so = d.get("server_output_json", {})
            per_s = full_seconds([(i["sum"]["seconds"], i["sum"]["bits_per_second"]) for i in so.get("intervals", [])])
            r.update(paced_stats(rec["bits_per_second"], per_s, TARGET[case]))
    return r


MEASURES = {
    "tcp": [("gbps", "Gbit/s delivered", "{:.2f}")],
    "udp": [("gbps", "payload Gbit/s delivered", "{:.3f}"), ("pps", "datagrams/s delivered", "{:,.0f}"),
            ("sent_pps", "datagrams/s sent", "{:,.0f}"), ("loss", "loss %", "{:.2f}")],
    "paced": [("rate_err", "rate error %", "{:+.3f}"), ("sd", "per-second stddev %", "{:.3f}"),
              ("maxdev", "worst second |dev| %", "{:.3f}"), ("loss", "loss %", "{:.3f}"),
              ("pps", "datagrams/s delivered", "{:,.0f}")],
}


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--btest", required=True)
    ap.add_argument("--iperf3", default="iperf3")
    ap.add_argument("--baseline-btest", default=None, metavar="PATH",
                    help="a second btest binary (e.g. an older build) run in the same rounds; adds a column and "
                         "the ratio btest/baseline")
    ap.add_argument("--baseline-args", default=None, metavar="FLAGS",
                    help="flags given to the baseline's client and server (e.g. '--no-zerocopy --no-discard'); "
                         "without --baseline-btest the baseline is the same binary with these flags")
    ap.add_argument("--quick", action="store_true", help="2 s per case, 1 repetition (CI: keeps the script working)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    ap.add_argument("--port", type=int, default=16000, help="btest server TCP port (UDP from port+1)")
    ap.add_argument("--iperf-port", type=int, default=16500)
    ap.add_argument("--server-args", default="", help="extra btest server flags, e.g. '--threads 1 --no-gro'")
    ap.add_argument("--client-args", default="", help="extra btest client flags, e.g. '--no-gso'")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--no-iperf3-zerocopy", action="store_true", help="TCP cases without the iperf3 -Z column")
    ap.add_argument("--veth-cases", default="tcp_tx,tcp_rx,udp_unlimited,udp_nooff",
                    help="cases run again over a veth pair between two network namespaces after the loopback "
                         "table (root only; empty: none)")
    ap.add_argument("--netns", default="btlb", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.quick:
        a.duration, a.reps = 2, 1
    a.duration = int(a.duration) if float(a.duration).is_integer() else a.duration
    cases = [c for c in a.cases.split(",") if c]
    for c in cases:
        if c not in CASES:
            ap.error(f"unknown case {c}")
    if a.client_args:
        for c in cases:
            t, b, i, k = CASES[c]
            CASES[c] = (t, b + a.client_args.split(), i, k)
    work = a.workdir or f"/tmp/btest-loopback-{os.getpid()}"
    os.makedirs(work, exist_ok=True)
    veth_cases = [c for c in a.veth_cases.split(",") if c] if not a.quick else []
    for c in veth_cases:
        if c not in CASES:
            ap.error(f"unknown case {c}")
    prefix = a.netns
    a.netns = None
    failed = run_suite(a, cases, work, "loopback (127.0.0.1)")
    if veth_cases and os.geteuid() == 0:
        netns_sh = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netns.sh")
        up = subprocess.run([netns_sh, "up", prefix], check=True, capture_output=True, text=True).stdout.strip()
        try:
            a.netns = prefix
            print()
            failed += run_suite(a, veth_cases, os.path.join(work, "veth"), f"veth pair: {up}")
        finally:
            subprocess.run([netns_sh, "down", prefix], stdout=subprocess.DEVNULL)
    elif veth_cases:
        print("\n(veth cases skipped: they need root to make network namespaces)")
    if failed:
        print("FAILED runs:\n  " + "\n  ".join(failed))
        return 1
    return 0


def run_suite(a, cases, work, where):
    os.makedirs(work, exist_ok=True)
    a.addr = NETNS_ADDR if a.netns else "127.0.0.1"
    a.srv_prefix = ["ip", "netns", "exec", f"{a.netns}-srv"] if a.netns else []
    a.cli_prefix = ["ip", "netns", "exec", f"{a.netns}-cli"] if a.netns else []
    base_line = f"   baseline: {a.baseline_btest or a.btest} {a.baseline_args or ''}" if a.baseline_btest or a.baseline_args else ""
    print(f"== {where}")
    print(f"btest: {a.btest}{base_line}   iperf3: {subprocess.run([a.iperf3, '--version'], capture_output=True, text=True).stdout.splitlines()[0]}")
    print(f"{len(cases)} cases x {a.reps} repetitions x {a.duration} s, tools alternating; cores {os.cpu_count()}; load before: {loadavg()}")
    sys.stdout.flush()
    pool = ServerPool(a, work)
    isrv = Server(a.srv_prefix + [a.iperf3, "-s", "-p", str(a.iperf_port), "-J"], os.path.join(work, "iperf3-server.json"))
    tools = [("btest", lambda a, c, srv: btest_run(a, c, pool), None), ("iperf3", iperf_run, isrv)]
    if not a.no_iperf3_zerocopy:
        tools.append(("iperf3-Z", lambda a, c, srv: iperf_run(a, c, srv, ["-Z"]), isrv))
    if a.baseline_btest or a.baseline_args:
        base_flags = (a.baseline_args or "").split()
        tools.insert(1, ("base", lambda a, c, srv: btest_run(a, c, pool, a.baseline_btest, base_flags), None))
    names = [t[0] for t in tools]
    results = {c: {n: [] for n in names} for c in cases}
    loads = [loadavg()]
    failed = []
    try:
        for rep in range(a.reps):
            for c in cases:
                # Rotate which tool goes first, so that no tool always runs on a warmer machine.
                k = rep % len(tools)
                order = tools[k:] + tools[:k]
                for name, fn, srv in order:
                    if name == "iperf3-Z" and CASES[c][3] != "tcp":
                        continue
                    try:
                        r = fn(a, c, srv)
                        results[c][name].append(r)
                        print(f"  rep {rep + 1} {c:14s} {name:8s} " +
                              " ".join(f"{k}={v:.4g}" for k, v in r.items() if isinstance(v, float)), flush=True)
                    except Exception as e:  # noqa: BLE001 - report and go on
                        failed.append(f"{c}/{name}: {e}")
                        print(f"  rep {rep + 1} {c:14s} {name:8s} FAILED: {e}", flush=True)
                    time.sleep(0.5)
            loads.append(loadavg())
    finally:
        pool.stop()
        isrv.stop()

    print()
    print(f"load average during the runs (1/5/15 min): {' | '.join(loads)}")
    has_base = "base" in names
    has_z = "iperf3-Z" in names
    no_ratio = ("loss", "rate_err", "sd", "maxdev")
    # (result name, heading, width): the medians, then btest's ratio to each other tool.
    values = [("btest", "btest", 14)] + ([("base", "baseline", 14)] if has_base else []) + [("iperf3", "iperf3", 14)]
    values += [("iperf3-Z", "iperf3 -Z", 10)] if has_z else []
    ratios = [("iperf3", "ratio", 7)] + ([("iperf3-Z", "vs -Z", 6)] if has_z else [])
    ratios += [("base", "vs base", 7)] if has_base else []
    head = f"{'case':32s} {'measure':26s}" + "".join(f" {h:>{w}s}" for _, h, w in values + ratios)
    print(head)
    print("-" * len(head))
    for c in cases:
        title, _, _, kind = CASES[c]
        for key, label, fmt in MEASURES[kind]:
            med = {n: median([r.get(key) for r in results[c][n]]) for n in names}
            b = med["btest"]

            def ratio(other, width):
                if b is None or other in (None, 0) or key in no_ratio:
                    return " " * width
                return f"{b / other:{width}.2f}"

            def cell(v):
                return fmt.format(v) if v is not None else "-"
            line = f"{title:32s} {label:26s}" + "".join(f" {cell(med[n]):>{w}s}" for n, _, w in values)
            line += "".join(f" {ratio(med[n], w)}" for n, _, w in ratios)
            print(line.rstrip())
            title = ""
    print()
    print("CPU seconds per GB delivered (medians)")
    cols = [("btest", "client_cpu", "btest client"), ("btest", "server_cpu", "btest server")]
    if has_base:
        cols += [("base", "client_cpu", "base client"), ("base", "server_cpu", "base server")]
    cols += [("iperf3", "client_cpu", "iperf3 client"), ("iperf3", "server_cpu", "iperf3 server")]
    if has_z:
        cols += [("iperf3-Z", "client_cpu", "-Z client"), ("iperf3-Z", "server_cpu", "-Z server")]
    print(f"{'case':32s} " + " ".join(f"{h:>14s}" for _, _, h in cols))
    for c in cases:
        def per_gb(tool, who):
            vals = [r[who] / (r["bytes"] / 1e9) for r in results[c][tool] if r.get("bytes")]
            m = median(vals)
            return f"{m:.3f}" if m is not None else "-"
        print(f"{CASES[c][0]:32s} " + " ".join(f"{per_gb(t, w):>14s}" for t, w, _ in cols))
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump({"args": {k: v for k, v in vars(a).items() if isinstance(v, (str, int, float, bool, type(None)))},
                   "loads": loads, "results": results}, f, indent=1)
    print(f"\nraw results: {os.path.join(work, 'results.json')}")
    sys.stdout.flush()
    return failed


if __name__ == "__main__":
    sys.exit(main())
