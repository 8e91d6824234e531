"""userInfo with identities: usersvc vs PostGraphile v4 and v5 vs pgbench, per round."""

from harness.common import fmt, med

GOALS = [
    ("userinfo_vs_postgraphile", ">=", 3.0,
     "userInfo(profileId) with identities, random existing ids: usersvc req/s ÷ PostGraphile req/s"),
    ("userinfo_vs_postgraphile5", ">=", 3.0,
     "the same ÷ PostGraphile v5 (grafast) req/s, measured in the same rounds"),
    ("userinfo_vs_pgbench", ">=", 0.40,
     "the same ÷ pgbench running the equivalent prepared SELECT at the same client count"),
]


def report(r):
    us, pgb = r.rounds("userinfo", "usersvc"), r.rounds("userinfo", "pgbench")
    pgl, pgl5 = r.rounds("userinfo", "postgraphile"), r.rounds("userinfo", "postgraphile5")
    rows = []
    for k in sorted(us):
        u, b = us[k]["rps"], pgb.get(k, {}).get("tps")
        p, p5 = pgl.get(k, {}).get("rps"), pgl5.get(k, {}).get("rps")
        rows.append({"round": k, "usersvc_rps": u, "postgraphile_rps": p, "postgraphile5_rps": p5,
                     "pgbench_tps": b, "vs_postgraphile": u / p if p else None,
                     "vs_postgraphile5": u / p5 if p5 else None, "vs_pgbench": u / b if b else None,
                     "usersvc_p99_ms": us[k]["latency_us"]["p99"] / 1000,
                     "postgraphile_p99_ms": pgl[k]["latency_us"]["p99"] / 1000 if k in pgl else None,
                     "postgraphile5_p99_ms": pgl5[k]["latency_us"]["p99"] / 1000 if k in pgl5 else None})
    r.details["rounds"]["userinfo"] = rows
    res = r.res
    res["userinfo_rps"] = med([x["usersvc_rps"] for x in rows])
    res["userinfo_rps_postgraphile"] = med([x["postgraphile_rps"] for x in rows])
    res["userinfo_vs_postgraphile"] = med([x["vs_postgraphile"] for x in rows])
    if pgl5:
        res["userinfo_rps_postgraphile5"] = med([x["postgraphile5_rps"] for x in rows])
        res["userinfo_vs_postgraphile5"] = med([x["vs_postgraphile5"] for x in rows])
    res["userinfo_vs_pgbench"] = med([x["vs_pgbench"] for x in rows])
    r.info += [("userinfo_rps", 0, "usersvc userInfo req/s (median of rounds)"),
               ("userinfo_rps_postgraphile", 0, "PostGraphile v4 req/s for the same (median)"),
               ("userinfo_rps_postgraphile5", 0, "PostGraphile v5 req/s for the same (median)")]
    r.cpu += [("userinfo", "usersvc", "userInfo, usersvc"),
              ("userinfo", "postgraphile", "userInfo, PostGraphile v4"),
              ("userinfo", "postgraphile5", "userInfo, PostGraphile v5"),
              ("userinfo", "pgbench", "userInfo's SELECT, pgbench")]
    r.notes.append(f"pgbench ceiling (median): {fmt(med([x['pgbench_tps'] for x in rows]), 0)} SELECTs/s.")

    L = r.sections
    L.append("### userInfo with identities (req/s at concurrency %d)\n" % r.meta["concurrency"])
    L.append("| round | usersvc | PostGraphile v4 | PostGraphile v5 | pgbench | ÷ v4 | ÷ v5 | ÷ pgbench | usersvc p99 ms | v4 p99 ms | v5 p99 ms |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for x in rows:
        L.append(f"| {x['round']} | {fmt(x['usersvc_rps'], 0)} | {fmt(x['postgraphile_rps'], 0)} | "
                 f"{fmt(x['postgraphile5_rps'], 0)} | {fmt(x['pgbench_tps'], 0)} | "
                 f"{fmt(x['vs_postgraphile'])} | {fmt(x['vs_postgraphile5'])} | {fmt(x['vs_pgbench'])} | "
                 f"{fmt(x['usersvc_p99_ms'])} | {fmt(x['postgraphile_p99_ms'])} | "
                 f"{fmt(x['postgraphile5_p99_ms'])} |")
    L.append("")
