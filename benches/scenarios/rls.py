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


def cpu(d, part):
    """A round's CPU per request of one part (`postgres`, `usersvc_other`, …), if measured."""
    return d.get("cpu_us", {}).get(part)


def report(r):
    L = r.sections
    intro = False
    for kind, label in (("userinfo", "userInfo"), ("create", "createUserEmailPassword")):
        on, off = r.rounds(f"rls-{kind}", "rls"), r.rounds(f"rls-{kind}", "bypassrls")
        rows = []
        for k in sorted(on):
            if k not in off:
                continue
            rows.append({"round": k, "rls_rps": on[k]["rps"], "bypassrls_rps": off[k]["rps"],
                         "cost": off[k]["rps"] / on[k]["rps"],
                         "rls_p99_ms": on[k]["latency_us"]["p99"] / 1000,
                         "bypassrls_p99_ms": off[k]["latency_us"]["p99"] / 1000,
                         "rls_postgres_cpu_us": cpu(on[k], "postgres"),
                         "bypassrls_postgres_cpu_us": cpu(off[k], "postgres"),
                         "rls_usersvc_cpu_us": cpu(on[k], "usersvc_other"),
                         "bypassrls_usersvc_cpu_us": cpu(off[k], "usersvc_other")})
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
    against_baseline(r, r.rounds("rls-userinfo", "bypassrls"))


def against_baseline(r, off):
    """userInfo with BYPASSRLS ÷ the baseline build's, measured back to back in BYPASSRLS mode."""
    base = r.rounds("rls-userinfo", "baseline-bypassrls")
    rows = [{"round": k, "bypassrls_rps": off[k]["rps"], "baseline_rps": base[k]["rps"],
             "ratio": off[k]["rps"] / base[k]["rps"],
             "bypassrls_usersvc_cpu_us": cpu(off[k], "usersvc_other"),
             "baseline_usersvc_cpu_us": cpu(base[k], "usersvc_other"),
             "bypassrls_postgres_cpu_us": cpu(off[k], "postgres"),
             "baseline_postgres_cpu_us": cpu(base[k], "postgres")}
            for k in sorted(off) if k in base and base[k]["rps"]]
    if not rows:
        return
    r.details["rounds"]["userinfo_vs_baseline_bypassrls"] = rows
    r.res["userinfo_vs_baseline_bypassrls"] = med([x["ratio"] for x in rows])
    r.info.append(("userinfo_vs_baseline_bypassrls", 2,
                   "userInfo: req/s with BYPASSRLS ÷ the baseline build's, back to back in the rls "
                   "scenario: the request paths compared with the tenant policies aside"))
    r.cpu.append(("rls-userinfo", "baseline-bypassrls",
                  "userInfo, the baseline build beside usersvc with BYPASSRLS (rls scenario)"))
    L = r.sections
    L.append("### userInfo against the baseline build, tenant policies aside\n")
    L.append("In the rls scenario's BYPASSRLS rounds the baseline build (restarted after the "
             "role's change) serves userInfo back to back with usersvc, in an order that "
             "alternates between rounds; ratio = usersvc's req/s ÷ the baseline's. CPU in µs "
             "per request.\n")
    L.append("| round | BYPASSRLS req/s | baseline req/s | ratio | usersvc CPU | baseline CPU | PostgreSQL CPU (usersvc) | PostgreSQL CPU (baseline) |")
    L.append("|---|---|---|---|---|---|---|---|")
    for x in rows:
        L.append(f"| {x['round']} | {fmt(x['bypassrls_rps'])} | {fmt(x['baseline_rps'])} | "
                 f"{fmt(x['ratio'])} | {fmt(x['bypassrls_usersvc_cpu_us'], 0)} | "
                 f"{fmt(x['baseline_usersvc_cpu_us'], 0)} | {fmt(x['bypassrls_postgres_cpu_us'], 0)} | "
                 f"{fmt(x['baseline_postgres_cpu_us'], 0)} |")
    L.append("")
