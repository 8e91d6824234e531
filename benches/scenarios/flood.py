"""userInfo p99 alone and while 16 clients call verifyPassword."""

from harness.common import fmt, med

GOALS = [
    ("p99_under_verify_flood_ratio", "<=", 3.0,
     "userInfo p99 while 16 clients call verifyPassword ÷ its p99 without them"),
]


def report(r):
    idle, busy = r.rounds("flood", "idle"), r.rounds("flood", "flood")
    verifies = r.rounds("flood", "verifies")
    rows = []
    for k in sorted(idle):
        if k not in busy:
            continue
        i99, b99 = idle[k]["latency_us"]["p99"], busy[k]["latency_us"]["p99"]
        rows.append({"round": k, "idle_p99_ms": i99 / 1000, "flood_p99_ms": b99 / 1000, "ratio": b99 / i99,
                     "idle_rps": idle[k]["rps"], "flood_rps": busy[k]["rps"],
                     "verifies_per_second": verifies.get(k, {}).get("rps")})
    r.details["rounds"]["verify_flood"] = rows
    r.res["p99_under_verify_flood_ratio"] = med([x["ratio"] for x in rows])
    if not rows:
        return
    L = r.sections
    L.append("### userInfo p99 with and without 16 clients calling verifyPassword\n")
    L.append("| round | idle p99 ms | flood p99 ms | ratio | idle req/s | flood req/s | verifies/s meanwhile |")
    L.append("|---|---|---|---|---|---|---|")
    for x in rows:
        L.append(f"| {x['round']} | {fmt(x['idle_p99_ms'])} | {fmt(x['flood_p99_ms'])} | {fmt(x['ratio'])} | "
                 f"{fmt(x['idle_rps'], 0)} | {fmt(x['flood_rps'], 0)} | {fmt(x['verifies_per_second'])} |")
    L.append("")
