"""The report: the raw records of a run -> results.json, details.json and BENCHMARKS.md.

The figures come from the scenarios' own modules, benches/scenarios/NAME.py, one per name in
benches/run's SCENARIOS list (a scenario without such a module records nothing of its own, or
is reported by another's). Each module has

    GOALS = [(key, comparison, goal, what), ...]   # rows of the results table with a goal;
                                                   # a fifth element True scales the goal
                                                   # with the profiles (per 1,000,000)
    def report(r): ...                             # r is a Report: reads r.rounds(...) /
                                                   # r.pick(...), sets r.res[key], adds
                                                   # r.details["rounds"][...], r.info rows,
                                                   # r.notes, r.cpu rows and r.sections lines

and is called in the list's order. What spans scenarios is done here: a comparison with a
baseline build for every scenario that recorded one (NAME_vs_baseline), the CPU per request
table, the machine, and the method and findings appended from benches/METHOD.md and FINDINGS.md.
"""

import importlib.util
import json
import os

from .common import by_round, fmt, load_raw, med, met, pick, write

BENCHES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Report:
    def __init__(self, recs, meta):
        self.recs, self.meta = recs, meta
        self.n = meta["profiles"]
        self.res = {}
        self.details = {"meta": meta, "rounds": {}}
        self.goals = []     # (key, cmp, goal, what[, per_million])
        self.info = []      # (key, digits, what): results without a goal
        self.notes = []     # paragraphs under the results table
        self.sections = []  # markdown lines of the "Rounds" part
        self.cpu = []       # (scenario, target, label): rows of the CPU table

    def rounds(self, scenario, target):
        return by_round(self.recs, scenario, target)

    def pick(self, **kw):
        return pick(self.recs, **kw)

    def goal_of(self, key, cmp, goal, per_million=False):
        if per_million and self.n != 1_000_000:
            g = goal * self.n / 1_000_000
            return g, f"≤ {g:.2f} ({goal:g} s per 1M, scaled to {self.n:,})"
        return goal, f"{cmp.replace('>=', '≥').replace('<=', '≤')} {goal:g}"


def load_scenario(name):
    path = os.path.join(BENCHES, "scenarios", f"{name}.py")
    if not os.path.exists(path):
        return None
    spec = importlib.util.spec_from_file_location(f"scenario_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def baseline_rows(r, scenario):
    """The measured build's rate ÷ the baseline's, per round (the two ran back to back)."""
    mine, base = r.rounds(scenario, "usersvc"), r.rounds(scenario, "baseline")
    return [{"round": k, "usersvc_rps": mine[k]["rps"], "baseline_rps": base[k]["rps"],
             "ratio": mine[k]["rps"] / base[k]["rps"] if base[k]["rps"] else None,
             "usersvc_p99_ms": mine[k]["latency_us"]["p99"] / 1000,
             "baseline_p99_ms": base[k]["latency_us"]["p99"] / 1000,
             "usersvc_cpu_us": mine[k].get("cpu_us", {}).get("usersvc_other"),
             "baseline_cpu_us": base[k].get("cpu_us", {}).get("usersvc_other")}
            for k in sorted(mine) if k in base]


def against_baseline(r):
    scenarios = list(dict.fromkeys(x["scenario"] for x in r.pick(target="baseline")))
    rows = {s: baseline_rows(r, s) for s in scenarios}
    for s, rs in rows.items():
        if rs:
            r.details["rounds"][f"{s}_vs_baseline"] = rs
            r.res[f"{s}_vs_baseline"] = med([x["ratio"] for x in rs])
            r.info.append((f"{s}_vs_baseline", 2, f"{s}: req/s ÷ the baseline build's "
                           "(same database, back to back, alternating order)"))
    if not any(rows.values()):
        return
    L = r.sections
    L.append(f"### Against the baseline build ({r.meta.get('baseline') or '?'})\n")
    L.append("Both builds on the same database, measured back to back in every round, in an "
             "order that alternates between rounds; CPU is usersvc's own (hashing threads "
             "apart), µs per request.\n")
    L.append("| scenario | round | measured req/s | baseline req/s | ratio | measured p99 ms | baseline p99 ms | measured CPU µs | baseline CPU µs |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for k, rs in rows.items():
        for x in rs:
            L.append(f"| {k} | {x['round']} | {fmt(x['usersvc_rps'])} | {fmt(x['baseline_rps'])} | "
                     f"{fmt(x['ratio'])} | {fmt(x['usersvc_p99_ms'])} | {fmt(x['baseline_p99_ms'])} | "
                     f"{fmt(x['usersvc_cpu_us'], 0)} | {fmt(x['baseline_cpu_us'], 0)} |")
    L.append("")


def cpu_table(r):
    """CPU per request (rounds recorded with cpu-snap), medians over the rounds."""
    rows = []
    for scenario, target, label in r.cpu:
        per = [d["cpu_us"] for d in r.rounds(scenario, target).values() if "cpu_us" in d]
        if per:
            row = {k: med([x[k] for x in per]) for k in per[0]}
            row["busy"] = med([x["usersvc_hash"] + x["usersvc_other"] + x["postgres"] + x["rest"]
                               for x in per])
            rows.append({"what": label, "scenario": scenario, "target": target,
                         "rounds": len(per), **row})
    r.details["cpu_us_per_request"] = rows
    if not rows:
        return
    L = r.sections
    L.append("### Where the CPU went (µs per request, median of rounds)\n")
    L.append("Read from `/proc` around each round: usersvc's password hashing threads and its "
             "other threads, the PostgreSQL cluster, everything else that ran (the load generator, "
             "PostGraphile, the bare argon2id program, the kernel's own work), and idle time. "
             f"The machine has {r.meta.get('cores', '?')} cores: at full load, busy µs per request "
             "× requests per second ≈ cores × 1,000,000.\n")
    L.append("| measured | usersvc hashing | usersvc other | PostgreSQL | everything else | busy | idle |")
    L.append("|---|---|---|---|---|---|---|")
    for x in rows:
        L.append(f"| {x['what']} | {fmt(x['usersvc_hash'], 0)} | {fmt(x['usersvc_other'], 0)} | "
                 f"{fmt(x['postgres'], 0)} | {fmt(x['rest'], 0)} | {fmt(x['busy'], 0)} | "
                 f"{fmt(x['idle'], 0)} |")
    L.append("")


def load_warning(meta):
    """A paragraph when the machine was busy with other work before the run began."""
    try:
        load = float(meta.get("load", "").split()[2])
    except (IndexError, ValueError):
        return []
    if load <= meta.get("cores", 1):
        return []
    return [f"**The machine was busy with other work** ({meta['load']}, on {meta.get('cores')} "
            "cores): every process got a fraction of a core, so the rates below are a fraction of "
            "a quiet machine's, and ratios between contenders that suffer unequally from that "
            "(PostGraphile's node workers, the bare argon2id program) say little about them on a "
            "quiet one. CPU per request is the steadier figure.\n"]


def markdown(r, results):
    meta, n = r.meta, r.n
    L = ["# Benchmarks\n",
         f"Written by `benches/run{meta['mode_flag']}` on {meta['date']}. "
         "Re-run it to refresh this file; `target/bench/results.json` holds the same figures "
         "as numbers and `target/bench/details.json` every round.\n",
         *load_warning(meta),
         "## Results\n",
         "| key | value | goal | met | what |",
         "|---|---|---|---|---|"]
    for key, cmp, goal, what, *scaled in r.goals:
        v = r.res.get(key)
        g, goal_s = r.goal_of(key, cmp, goal, bool(scaled and scaled[0]))
        ok = met(cmp, v, g)
        L.append(f"| `{key}` | {fmt(v)} | {goal_s} | {'yes' if ok else ('**no**' if ok is False else '–')} | {what} |")
    for key, digits, what in r.info:
        if key in results:
            L.append(f"| `{key}` | {fmt(r.res[key], digits)} | – | – | {what} |")
    L.append("")
    L.extend(r.notes)

    L.append("## Machine and versions\n")
    for k in ("machine", "load", "cpu", "memory", "kernel", "os", "usersvc", "baseline", "rustc",
              "postgresql", "pgbench", "postgraphile", "postgraphile5", "node", "node22", "wrk",
              "python"):
        if meta.get(k):
            L.append(f"- {k}: {meta[k]}")
    L.append(f"- mode: {meta['mode']} ({n:,} profiles), {meta['rounds']} rounds, "
             f"{meta['duration']} s per measurement after {meta['warmup']} s of warm-up per target, "
             f"concurrency {meta['concurrency']} unless said otherwise")
    L.append(f"- seeding: {meta.get('seed_seconds', '–')} s for {n:,} profiles and their identities "
             "(INSERT … SELECT generate_series, not a goal)")
    L.append("")

    L.append("## Rounds\n")
    L.append("Each round runs the contenders back to back, in an order that alternates between "
             "rounds, so that noise from the shared machine hits both. The figures above are medians "
             "of the per-round figures (ratios are taken within a round, then the median).\n")
    L.extend(r.sections)
    for name in ("METHOD.md", "FINDINGS.md"):
        path = os.path.join(BENCHES, name)
        if os.path.exists(path):
            L.append(open(path).read().rstrip() + "\n")
    return "\n".join(L)


def cmd_report(a):
    meta = json.load(open(a.meta))
    r = Report(load_raw(a.raw), meta)
    for name in meta["scenarios"]:
        mod = load_scenario(name)
        if mod is None:
            continue
        r.goals.extend(getattr(mod, "GOALS", []))
        mod.report(r)
    against_baseline(r)
    cpu_table(r)
    r.res["profiles"] = r.n
    r.info.append(("profiles", 0, "profiles seeded (each with an EMAIL identity, one in five also EXTERNAL)"))

    results = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.res.items()}
    with open(a.results, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    r.details["results"] = results
    with open(a.details, "w") as f:
        json.dump(r.details, f, indent=2)
        f.write("\n")
    write(a.markdown, markdown(r, results))

    print()
    print(f"{'key':32} {'value':>12}  goal")
    for key, cmp, goal, _, *scaled in r.goals:
        v = r.res.get(key)
        g, _ = r.goal_of(key, cmp, goal, bool(scaled and scaled[0]))
        ok = met(cmp, v, g)
        print(f"{key:32} {fmt(v):>12}  {cmp} {g:g}  {'ok' if ok else 'MISSED'}")
    for key, digits, _ in r.info:
        if key in results:
            print(f"{key:32} {fmt(r.res[key], digits):>12}")
