"""verifyPassword vs bare argon2id verification."""

from harness.common import fmt, med

GOALS = [
    ("verify_vs_argon2", ">=", 0.90,
     "verifyPassword (right password) per second ÷ bare argon2id verifications per second, "
     "same parameters and cores"),
]


def report(r):
    vf, av = r.rounds("verify", "usersvc"), r.rounds("verify", "argon2")
    rows = []
    for k in sorted(vf):
        c, h = vf[k]["rps"], av.get(k, {}).get("verifications_per_second")
        rows.append({"round": k, "verifies_per_second": c, "argon2_verifications_per_second": h,
                     "ratio": c / h if h else None, "verify_p50_ms": vf[k]["latency_us"]["p50"] / 1000})
    r.details["rounds"]["verify"] = rows
    r.res["verify_vs_argon2"] = med([x["ratio"] for x in rows])
    r.cpu += [("verify", "usersvc", "verifyPassword, usersvc"),
              ("verify", "argon2", "bare argon2id verification")]
    if not rows:
        return
    L = r.sections
    L.append("### verifyPassword vs bare argon2id verification (per second)\n")
    L.append("Logins with the right password, spread over the userInfo ids (their EMAIL identities "
             "get one argon2id hash of the same parameters), so each succeeds and is recorded; the "
             "bare program checks the same password against such a hash on one thread per core.\n")
    L.append("| round | verifyPassword/s (concurrency %d) | argon2id verifications/s (%s threads) | ratio | verify p50 ms |"
             % (r.meta["concurrency"], r.meta.get("cores", "?")))
    L.append("|---|---|---|---|---|")
    for x in rows:
        L.append(f"| {x['round']} | {fmt(x['verifies_per_second'])} | {fmt(x['argon2_verifications_per_second'])} | "
                 f"{fmt(x['ratio'])} | {fmt(x['verify_p50_ms'])} |")
    L.append("")
