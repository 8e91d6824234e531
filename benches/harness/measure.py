"""Parsing what the load generators print, CPU snapshots, recording measurements, and the
profiling helpers (folded stacks, statement counts)."""

import glob
import json
import os
import re
import sys

from .common import die

# --- parsing and recording ------------------------------------------------------------------


def read_with(path, pattern, what):
    """A tool's output file and the first match of `pattern` in it (multi-line mode); dies
    naming `what` and showing the output's tail when there is none."""
    with open(path, errors="replace") as f:
        text = f.read()
    m = re.search(pattern, text, re.M)
    if not m:
        die(f"no {what} in {path}:\n{text[-2000:]}")
    return text, m


def parse_wrk(path):
    _, m = read_with(path, r"^BENCHJSON (\{.*\})$", "BENCHJSON line")
    d = json.loads(m.group(1))
    errs = sum(d["errors"].values())
    d["failed"] = d["bad"] + errs
    if d["requests"] == 0:
        die(f"wrk completed no request ({path})")
    return d


def parse_pgbench(path):
    text, m = read_with(path, r"^tps = ([\d.]+) \(without initial connection time\)",
                        "tps in pgbench output")
    d = {"tps": float(m.group(1))}
    m = re.search(r"^latency average = ([\d.]+) ms", text, re.M)
    if m:
        d["latency_ms_mean"] = float(m.group(1))
    m = re.search(r"^number of transactions actually processed: (\d+)", text, re.M)
    if m:
        d["transactions"] = int(m.group(1))
    m = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    d["failed"] = int(m.group(1)) if m else 0
    return d


# --- where the CPU went -------------------------------------------------------------------

def stat_fields(stat_path):
    """The fields of a /proc stat file after the command name (state first); None when gone."""
    try:
        with open(stat_path) as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def ticks(fields, children=False):
    """utime + stime in clock ticks; with `children`, also the reaped children's."""
    if fields is None:
        return 0
    t = int(fields[11]) + int(fields[12])
    return t + int(fields[13]) + int(fields[14]) if children else t


def cmd_cpu_snap(a):
    """CPU time so far, in clock ticks: usersvc's password hashing threads and the rest of the
    process, the PostgreSQL cluster, and the whole machine, busy and idle. PostgreSQL counts the
    postmaster, its live children, and the children it has reaped (backends that ended between
    two snapshots would otherwise take their CPU with them); the hashing threads never end, and
    the rest of usersvc is the process's total less theirs, so threads that end count too."""
    hashing = 0
    for task in glob.glob(f"/proc/{a.usersvc}/task/*"):
        try:
            comm = open(f"{task}/comm").read()
        except OSError:
            continue
        if comm.startswith("usersvc-hash"):
            hashing += ticks(stat_fields(f"{task}/stat"))
    snap = {"usersvc_hash": hashing,
            "usersvc_other": ticks(stat_fields(f"/proc/{a.usersvc}/stat")) - hashing,
            "postgres": ticks(stat_fields(f"/proc/{a.postmaster}/stat"), children=True)}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        fields = stat_fields(stat)
        if fields is not None and fields[1] == a.postmaster:
            snap["postgres"] += ticks(fields)
    cpu = open("/proc/stat").readline().split()[1:]
    jiffies = [int(x) for x in cpu[:8]]   # user nice system idle iowait irq softirq steal
    snap["idle"] = jiffies[3] + jiffies[4]
    snap["busy"] = sum(jiffies) - snap["idle"]
    snap["hz"] = os.sysconf("SC_CLK_TCK")
    json.dump(snap, sys.stdout)
    print()


def cpu_per_request(before, after, requests):
    """Microseconds of CPU per request between two snapshots: usersvc's hashing threads, its
    other threads, PostgreSQL, everything else that ran (the load generator, PostGraphile, the
    kernel's own work, other tenants of the machine), and the machine's idle time."""
    b, e = json.load(open(before)), json.load(open(after))
    us = lambda k: (e[k] - b[k]) * 1e6 / e["hz"] / requests
    out = {"usersvc_hash": us("usersvc_hash"), "usersvc_other": us("usersvc_other"),
           "postgres": us("postgres"), "idle": us("idle")}
    out["rest"] = us("busy") - out["usersvc_hash"] - out["usersvc_other"] - out["postgres"]
    return {k: round(v, 1) for k, v in out.items()}


def cmd_fold(a):
    """`perf script` output on stdin -> folded stacks (root;...;leaf count), for flamegraphs."""
    stacks, cur = {}, []

    def flush():
        if cur:
            key = ";".join(reversed(cur))
            stacks[key] = stacks.get(key, 0) + 1

    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip() or not line[0].isspace():
            flush()
            cur = []
            continue
        m = re.match(r"\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$", line)
        if m:
            cur.append(re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)).replace(";", ","))
    flush()
    for k, v in sorted(stacks.items(), key=lambda kv: -kv[1]):
        print(f"{k} {v}")


def cmd_statements(a):
    """PostgreSQL's log with log_min_duration_statement = 0 on stdin, split by the harness's
    `SELECT 'bench-marker KIND'` lines: per kind of request, how many statements were parsed,
    bound and executed, then every statement."""
    kinds, cur, lines = {}, None, []
    for line in sys.stdin:
        m = re.search(r"bench-marker (\w+)", line)
        if m and "statement:" in line:
            cur = None if m.group(1) == "end" else m.group(1)
            if cur:
                kinds[cur] = {"parse": 0, "bind": 0, "execute": 0, "statement": 0, "SELECT $1": 0}
                lines.append(f"--- {cur}")
            continue
        m = re.search(r"duration: ([0-9.]+ ms)  (parse|bind|execute|statement)( [^:]*)?: (.*)$", line)
        if not m or cur is None:
            continue
        k = kinds[cur]
        k[m.group(2)] += 1
        if m.group(2) == "execute" and m.group(4).strip() == "SELECT $1":
            k["SELECT $1"] += 1
        lines.append(f"{m.group(1):>10}  {m.group(2)}{m.group(3) or ''}: {m.group(4)[:140]}")
    sent = {"userinfo": 40, "page_first": 40, "page_deep": 40, "create": 40}
    print(f"{'request':12} {'sent':>5} {'parse':>6} {'bind':>6} {'execute':>8} {'simple':>7} {'SELECT $1':>10}")
    for kind, k in kinds.items():
        print(f"{kind:12} {sent.get(kind, 0):>5} {k['parse']:>6} {k['bind']:>6} {k['execute']:>8} "
              f"{k['statement']:>7} {k['SELECT $1']:>10}")
    print()
    print("parse: statements prepared (a cached statement is prepared once per pooled connection, at")
    print("most 16); simple: BEGIN/COMMIT and other unprepared statements; SELECT $1: the pool's check.")
    print()
    print("\n".join(lines))


def cmd_parse_wrk(a):
    print(json.dumps(parse_wrk(a.file)))


def cmd_parse_pgbench(a):
    print(json.dumps(parse_pgbench(a.file)))


def coerce(v):
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v


def cmd_record(a):
    rec = {}
    for kv in a.fields:
        k, _, v = kv.partition("=")
        rec[k] = coerce(v)
    if a.json:
        text = sys.stdin.read() if a.json == "-" else open(a.json).read()
        rec["data"] = json.loads(text)
    if a.wrk:
        rec["data"] = parse_wrk(a.wrk)
    if a.pgbench:
        rec["data"] = parse_pgbench(a.pgbench)
    if a.cpu:
        d = rec["data"]
        n = d.get("requests") or d.get("transactions") or d.get("hashes") or d.get("verifications")
        rec["data"]["cpu_us"] = cpu_per_request(a.cpu[0], a.cpu[1], n)
    with open(a.raw, "a") as f:
        f.write(json.dumps(rec) + "\n")
    d = rec.get("data", {})
    summary = ""
    if "latency_us" in d:
        lat = d["latency_us"]
        summary = (f"{d['rps']:9.1f} req/s  p50 {lat['p50'] / 1000:7.2f} ms  "
                   f"p99 {lat['p99'] / 1000:7.2f} ms  failed {d['failed']}")
    elif "tps" in d:
        summary = f"{d['tps']:9.1f} tps (pgbench)  failed {d['failed']}"
    elif "hashes_per_second" in d:
        summary = f"{d['hashes_per_second']:9.2f} hashes/s ({d['threads']} threads)"
    elif "verifications_per_second" in d:
        summary = f"{d['verifications_per_second']:9.2f} verifications/s ({d['threads']} threads)"
    elif "seconds" in d:
        summary = f"{d['seconds']:.2f} s for {d['profiles']} profiles"
    elif "vmhwm_mib" in d and "requests" in d:
        summary = f"peak RSS {d['vmhwm_mib']} MiB, now {d['vmrss_mib']} MiB, after {d['requests']:,} requests"
    elif "vmhwm_mib" in d:
        summary = f"peak RSS {d['vmhwm_mib']} MiB at {d['connections']} connections ({d['rps']:.0f} req/s)"
    label = " ".join(f"{k}={v}" for k, v in rec.items() if k != "data")
    print(f"  {label:<48} {summary}")
    if d.get("failed"):
        die(f"{d['failed']} failed requests in {label}")

