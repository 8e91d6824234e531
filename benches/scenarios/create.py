"""createUserEmailPassword vs the bare argon2id rate."""

from harness.common import fmt, med

GOALS = [
    ("create_vs_argon2", ">=", 0.90,
     "createUserEmailPassword per second ÷ bare argon2id hashes per second, same parameters and cores"),
]


def report(r):
    cr, a2 = r.rounds("create", "usersvc"), r.rounds("create", "argon2")
    rows = []
    for k in sorted(cr):
        c, h = cr[k]["rps"], a2.get(k, {}).get("hashes_per_second")
        rows.append({"round": k, "creates_per_second": c, "hashes_per_second": h,
                     "ratio": c / h if h else None, "create_p50_ms": cr[k]["latency_us"]["p50"] / 1000})
    r.details["rounds"]["create"] = rows
    r.res["create_vs_argon2"] = med([x["ratio"] for x in rows])
    r.cpu += [("create", "usersvc", "createUserEmailPassword, usersvc"),
              ("create", "argon2", "bare argon2id hash")]
    L = r.sections
    L.append("### createUserEmailPassword vs bare argon2id (per second)\n")
    L.append("| round | creates/s (concurrency %d) | argon2id hashes/s (%s threads) | ratio | create p50 ms |"
             % (r.meta["concurrency"], r.meta.get("cores", "?")))
    L.append("|---|---|---|---|---|")
    for x in rows:
        L.append(f"| {x['round']} | {fmt(x['creates_per_second'])} | {fmt(x['hashes_per_second'])} | "
                 f"{fmt(x['ratio'])} | {fmt(x['create_p50_ms'])} |")
    L.append("")
