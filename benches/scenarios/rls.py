"""What row-level security costs: the same build with its role under the tenant policies and
with BYPASSRLS, rounds in alternating order."""

from harness.common import fmt, med

GOALS = [
    ("rls_cost_userinfo", "<=", 1.05,
     "userInfo: time per request with row-level security ÷ without (req/s with BYPASSRLS ÷ "
     "req/s under the policies; same build, alternating rounds)"),
    ("rls_cost_create", "<=", 1.05,
     "createUserEmailPassword: the same ratio"),
]


def report(r):
    L = r.sections
    intro = False
    for kind, label in (("userinfo", "userInfo"), ("create", "createUserEmailPassword")):
        on, off = r.rounds(f"rls-{kind}", "rls"), r.rounds(f"rls-{kind}", "bypassrls")
        rows = []
        for k in sorted(on):
            if k not in off:
                continue
            pg = lambda d: d.get("cpu_us", {}).get("postgres")
            us = lambda d: d.get("cpu_us", {}).get("usersvc_other")
            rows.append({"round": k, "rls_rps": on[k]["rps"], "bypassrls_rps": off[k]["rps"],
                         "cost": off[k]["rps"] / on[k]["rps"],
                         "rls_p99_ms": on[k]["latency_us"]["p99"] / 1000,
                         "bypassrls_p99_ms": off[k]["latency_us"]["p99"] / 1000,
                         "rls_postgres_cpu_us": pg(on[k]), "bypassrls_postgres_cpu_us": pg(off[k]),
                         "rls_usersvc_cpu_us": us(on[k]), "bypassrls_usersvc_cpu_us": us(off[k])})
        if not rows:
            continue
        r.details["rounds"][f"rls_{kind}"] = rows
        r.res[f"rls_cost_{kind}"] = med([x["cost"] for x in rows])
        r.cpu += [(f"rls-{kind}", "rls", f"{label}, usersvc under RLS (rls scenario)"),
                  (f"rls-{kind}", "bypassrls", f"{label}, usersvc with BYPASSRLS (rls scenario)")]
        if not intro:
            intro = True
            L.append("### Row-level security: under the policies and with BYPASSRLS\n")
            L.append("The same build, its role `usersvc_server` altered between the two modes "
                     "(usersvc restarted after each change, then warmed up), in rounds whose order "
                     "alternates; cost = req/s with BYPASSRLS ÷ req/s under the policies, i.e. the "
                     "time per request with RLS ÷ without. CPU in µs per request.\n")
            L.append("| request | round | RLS req/s | BYPASSRLS req/s | cost | RLS p99 ms | BYPASSRLS p99 ms | RLS PostgreSQL CPU | BYPASSRLS PostgreSQL CPU | RLS usersvc CPU | BYPASSRLS usersvc CPU |")
            L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for x in rows:
            L.append(f"| {label} | {x['round']} | {fmt(x['rls_rps'])} | {fmt(x['bypassrls_rps'])} | "
                     f"{fmt(x['cost'], 3)} | {fmt(x['rls_p99_ms'])} | {fmt(x['bypassrls_p99_ms'])} | "
                     f"{fmt(x['rls_postgres_cpu_us'], 0)} | {fmt(x['bypassrls_postgres_cpu_us'], 0)} | "
                     f"{fmt(x['rls_usersvc_cpu_us'], 0)} | {fmt(x['bypassrls_usersvc_cpu_us'], 0)} |")
    if intro:
        L.append("")
