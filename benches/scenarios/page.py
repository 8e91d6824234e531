"""Deep page vs first page: usersvc's keyset paging, PostGraphile's offset paging."""

from harness.common import fmt, med

GOALS = [
    ("deep_page_ratio", "<=", 1.1,
     "median latency of users(first: 100, after: cursor of row N-100) ÷ that of the first page, "
     "both measured at once"),
]


def report(r):
    first, deep = r.rounds("page", "usersvc-first"), r.rounds("page", "usersvc-deep")
    pfirst, pdeep = r.rounds("page", "postgraphile-first"), r.rounds("page", "postgraphile-deep")
    rows = []
    for k in sorted(first):
        f50, d50 = first[k]["latency_us"]["p50"], deep[k]["latency_us"]["p50"]
        row = {"round": k, "first_p50_ms": f50 / 1000, "deep_p50_ms": d50 / 1000, "ratio": d50 / f50,
               "first_rps": first[k]["rps"], "deep_rps": deep[k]["rps"]}
        if k in pfirst and k in pdeep:
            pf, pd = pfirst[k]["latency_us"]["p50"], pdeep[k]["latency_us"]["p50"]
            row.update({"pg_first_p50_ms": pf / 1000, "pg_deep_p50_ms": pd / 1000, "pg_ratio": pd / pf,
                        "pg_first_rps": pfirst[k]["rps"], "pg_deep_rps": pdeep[k]["rps"]})
        rows.append(row)
    r.details["rounds"]["page"] = rows
    r.res["deep_page_ratio"] = med([x["ratio"] for x in rows])
    half = r.meta["concurrency"] // 2
    r.notes.append(f"PostGraphile's offset paging at the same depth, one client: deep ÷ first page "
                   f"latency = {fmt(med([x.get('pg_ratio') for x in rows]))} (usersvc's keyset "
                   f"paging, both pages at once on {half} connections each: "
                   f"{fmt(r.res['deep_page_ratio'])}).\n")

    L = r.sections
    L.append("### Deep page vs first page (median latency ms)\n")
    L.append("usersvc: the first and the deep page measured at the same time, %d connections each, "
             "so that the machine's noise slows both alike; PostGraphile's offset paging with one "
             "client (at 32 its deep requests would only queue behind each other).\n" % half)
    L.append("| round | usersvc first | usersvc deep | ratio | PostGraphile offset 0 | PostGraphile offset N-100 | ratio |")
    L.append("|---|---|---|---|---|---|---|")
    for x in rows:
        L.append(f"| {x['round']} | {fmt(x['first_p50_ms'])} | {fmt(x['deep_p50_ms'])} | {fmt(x['ratio'])} | "
                 f"{fmt(x.get('pg_first_p50_ms'))} | {fmt(x.get('pg_deep_p50_ms'))} | {fmt(x.get('pg_ratio'))} |")
    L.append("")
