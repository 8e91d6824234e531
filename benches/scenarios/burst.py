"""userInfo p99 alone and while 16 clients create users."""

from harness.common import fmt, med

GOALS = [
    ("p99_under_create_burst_ratio", "<=", 3.0,
     "userInfo p99 while 16 clients create users ÷ its p99 without them"),
]


def report(r):
    idle, burst = r.rounds("burst", "idle"), r.rounds("burst", "burst")
    creates = r.rounds("burst", "creates")
    rows = []
    for k in sorted(idle):
        i99, b99 = idle[k]["latency_us"]["p99"], burst[k]["latency_us"]["p99"]
        rows.append({"round": k, "idle_p99_ms": i99 / 1000, "burst_p99_ms": b99 / 1000, "ratio": b99 / i99,
                     "idle_rps": idle[k]["rps"], "burst_rps": burst[k]["rps"],
                     "creates_per_second": creates.get(k, {}).get("rps")})
    r.details["rounds"]["burst"] = rows
    r.res["p99_under_create_burst_ratio"] = med([x["ratio"] for x in rows])
    L = r.sections
    L.append("### userInfo p99 with and without 16 clients creating users\n")
    L.append("| round | idle p99 ms | burst p99 ms | ratio | idle req/s | burst req/s | creates/s meanwhile |")
    L.append("|---|---|---|---|---|---|---|")
    for x in rows:
        L.append(f"| {x['round']} | {fmt(x['idle_p99_ms'])} | {fmt(x['burst_p99_ms'])} | {fmt(x['ratio'])} | "
                 f"{fmt(x['idle_rps'], 0)} | {fmt(x['burst_rps'], 0)} | {fmt(x['creates_per_second'])} |")
    L.append("")
