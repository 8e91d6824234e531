#!/usr/bin/env python3
"""Helper of benches/run: request bodies, checks, the paging walks, result parsing and the
report. Standard library only (Python 3.9+).

Subcommands (all print to stdout; errors exit non-zero with a message):
  bodies DIR                      write the GraphQL request bodies the load generators send
  pgbench-script FILE             the pgbench script equivalent to userInfo-with-identities
  check ...                       usersvc and PostGraphile return the same user for sample ids
  deep-cursor ...                 the cursor of row N-100 (from users(last: 101)) -> body files
  iterate ...                     walk every profile with first: 500, one client; JSON out
  parse-wrk FILE                  the BENCHJSON line of a wrk run, as JSON
  fold                            `perf script` on stdin -> folded stacks (flamegraph input)
  statements                      PostgreSQL's statement log on stdin -> counts per request kind
  parse-pgbench FILE              tps and latency of a pgbench run, as JSON
  record RAW KEY=VALUE... [--json FILE|-]   append one measurement to the raw JSONL file
  report ...                      medians and ratios -> results.json, details.json, BENCHMARKS.md
"""

import argparse
import glob
import http.client
import json
import os
import re
import statistics
import sys
import time
import urllib.parse

# --- the requests -------------------------------------------------------------------------

# userInfo with identities: the profile fields a caller typically reads and its identities.
USERINFO = (
    "query($id: ID!) { userInfo(profileId: $id) { profileId userName contactEmail countryCode "
    "languageCode timeZoneOffset pictureUrl isTester createdAt updatedAt lastLoginAt "
    "identities { type externalId externalAuthType hasPassword createdAt } } }"
)
# The same row and identities through PostGraphile (views in bench_api, see sql/postgraphile.sql).
USERINFO_PG = (
    'query($id: UUID!) { profileByAppIdAndProfileId(appId: "bench", profileId: $id) { '
    "profileId userName contactEmail countryCode languageCode timeZoneOffset pictureUrl isTester "
    "createdAt updatedAt lastLoginAt identitiesByAppIdAndProfileId { nodes { kind externalId "
    "externalAuthType hasPassword createdAt } } } }"
)
PAGE = (
    "query($after: String) { users(first: 100, after: $after) { edges { cursor node { "
    "profileId userName createdAt } } pageInfo { hasNextPage endCursor } } }"
)
PAGE_PG = (
    'query($offset: Int) { allProfiles(condition: {appId: "bench"}, '
    "orderBy: [CREATED_AT_ASC, PROFILE_ID_ASC], first: 100, offset: $offset) { "
    "nodes { profileId userName createdAt } pageInfo { hasNextPage endCursor } } }"
)
ITERATE = (
    "query($after: String) { users(first: 500, after: $after) { nodes { profileId userName "
    "contactEmail createdAt } pageInfo { hasNextPage endCursor } } }"
)
CREATE = (
    "mutation($in: CreateUserEmailPasswordInput!) { createUserEmailPassword(input: $in) { "
    "user { profileId } } }"
)
VERIFY = (
    "mutation($in: VerifyPasswordInput!) { verifyPassword(input: $in) { user { profileId } } }"
)
# The password benches/run gives the EMAIL identities of the userInfo ids, for verifyPassword.
LOGIN_PASSWORD = "correct horse battery staple"

# The statement usersvc runs for userInfo with identities (src/users/read.rs: one LEFT JOIN,
# built by diesel; usersvc sorts the few identities itself; copied from the server's statement
# log), with the profile id looked up by rank in bench.ids inside the same statement (pgbench
# variables cannot hold a UUID).
USERINFO_SQL = (
    'SELECT "profiles"."app_id", "profiles"."profile_id", "profiles"."user_name", '
    '"profiles"."contact_email", "profiles"."country_code", "profiles"."language_code", '
    '"profiles"."time_zone_offset", "profiles"."picture_url", "profiles"."is_tester", '
    '"profiles"."summary_friend_data", "profiles"."parent_app_id", "profiles"."parent_profile_id", '
    '"profiles"."created_at", "profiles"."updated_at", "profiles"."last_login_at", '
    '"identities"."app_id", "identities"."profile_id", "identities"."kind", '
    '"identities"."external_auth_type", "identities"."external_id", '
    '("identities"."password_hash" IS NOT NULL), "identities"."created_at" '
    'FROM ("profiles" LEFT OUTER JOIN "identities" ON (("identities"."app_id" = "profiles"."app_id") '
    'AND ("identities"."profile_id" = "profiles"."profile_id"))) '
    'WHERE (("profiles"."app_id" = :app) AND ("profiles"."profile_id" = '
    "(SELECT profile_id FROM bench.ids WHERE rank = :r)));"
)


def die(msg):
    print(f"bench.py: {msg}", file=sys.stderr)
    sys.exit(1)


def body(query, variables):
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":"))


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def cmd_bodies(a):
    d = a.dir
    os.makedirs(d, exist_ok=True)
    # wrk's graphql.lua replaces __ID__ / __N__ per request.
    write(f"{d}/userinfo.json", body(USERINFO, {"id": "__ID__"}))
    write(f"{d}/userinfo_pg.json", body(USERINFO_PG, {"id": "__ID__"}))
    write(f"{d}/page_first.json", body(PAGE, {"after": None}))
    write(f"{d}/page_first_pg.json", body(PAGE_PG, {"offset": 0}))
    write(
        f"{d}/create.json",
        body(
            CREATE,
            {
                "in": {
                    "email": "bench-__N__@example.com",
                    "password": "correct horse battery staple",
                    "userName": "Bench user __N__",
                }
            },
        ),
    )
    # A login with the right password; __ID__ is an email from the logins file.
    write(
        f"{d}/verify.json",
        body(VERIFY, {"in": {"type": "EMAIL", "externalId": "__ID__", "password": LOGIN_PASSWORD}}),
    )


def cmd_pgbench_script(a):
    write(a.file, f"\\set r random(0, {a.ids - 1})\n{USERINFO_SQL}\n")


# --- HTTP ---------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection to a GraphQL endpoint."""

    def __init__(self, url, token=None, timeout=60):
        u = urllib.parse.urlsplit(url)
        if u.hostname not in ("127.0.0.1", "localhost", "::1"):
            die(f"refusing to send load anywhere but the loopback: {url}")
        self.host, self.port, self.path = u.hostname, u.port, u.path or "/"
        self.token, self.timeout = token, timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def post(self, data):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = data if isinstance(data, (bytes, str)) else json.dumps(data)
        for attempt in (0, 1):
            try:
                self.conn.request("POST", self.path, body=payload, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (ConnectionError, http.client.HTTPException):
                if attempt:
                    raise
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        if resp.status != 200:
            die(f"HTTP {resp.status} from {self.path}: {raw[:300]!r}")
        doc = json.loads(raw)
        if doc.get("errors"):
            die(f"GraphQL errors: {json.dumps(doc['errors'])[:500]}")
        return doc["data"]


def token_of(a):
    if a.token_file:
        with open(a.token_file) as f:
            return f.read().strip()
    return None


def read_ids(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def cmd_check(a):
    """Both servers return the same user (fields and identities) for a sample of ids."""
    ids = read_ids(a.ids)
    us = Client(a.usersvc, token_of(a))
    pg = Client(a.postgraphile)
    step = max(1, len(ids) // a.samples)
    checked = with_external = 0
    for pid in ids[::step][: a.samples]:
        u = us.post({"query": USERINFO, "variables": {"id": pid}})["userInfo"]
        p = pg.post({"query": USERINFO_PG, "variables": {"id": pid}})["profileByAppIdAndProfileId"]
        if u is None or p is None:
            die(f"profile {pid} missing: usersvc={u is not None} postgraphile={p is not None}")
        pid_u = u.pop("profileId")
        pid_p = p.pop("profileId")
        ids_u = u.pop("identities")
        ids_p = p.pop("identitiesByAppIdAndProfileId")["nodes"]
        def norm(v):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            if isinstance(v, str):  # timestamps: .760 and .76 are the same instant
                m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)", v)
                if m:
                    frac = (m.group(2) or "").ljust(6, "0")
                    tz = "+00:00" if m.group(3) in ("Z", "+00:00") else m.group(3)
                    return f"{m.group(1)}.{frac}{tz}"
            return v
        if pid_u != pid_p or {k: norm(v) for k, v in u.items()} != {k: norm(v) for k, v in p.items()}:
            die(f"different profile {pid}:\n usersvc      {u}\n postgraphile {p}")
        ids_u = [{k: norm(v) for k, v in i.items()} for i in ids_u]
        ids_p = [
            {
                "type": i["kind"],
                "externalId": i["externalId"],
                "externalAuthType": i["externalAuthType"] or None,
                "hasPassword": i["hasPassword"],
                "createdAt": norm(i["createdAt"]),
            }
            for i in ids_p
        ]
        if ids_u != ids_p:
            die(f"different identities of {pid}:\n usersvc      {ids_u}\n postgraphile {ids_p}")
        checked += 1
        with_external += len(ids_u) > 1
    print(f"same answers from usersvc and PostGraphile for {checked} profiles "
          f"({with_external} with two identities)")


def cmd_deep_cursor(a):
    """users(last: 101): its first edge is row N-100; `after` it comes the last page of 100."""
    c = Client(a.url, token_of(a))
    q = "query { users(last: 101) { edges { cursor node { profileId } } } }"
    edges = c.post({"query": q})["users"]["edges"]
    if len(edges) != 101:
        die(f"users(last: 101) returned {len(edges)} edges")
    cursor = edges[0]["cursor"]
    write(f"{a.dir}/page_deep.json", body(PAGE, {"after": cursor}))
    write(f"{a.dir}/page_deep_pg.json", body(PAGE_PG, {"offset": a.profiles - 100}))
    deep = c.post({"query": PAGE, "variables": {"after": cursor}})["users"]
    first = c.post({"query": PAGE, "variables": {"after": None}})["users"]
    if len(deep["edges"]) != 100 or deep["pageInfo"]["hasNextPage"]:
        die(f"the deep page has {len(deep['edges'])} rows, hasNextPage={deep['pageInfo']['hasNextPage']}")
    if len(first["edges"]) != 100 or not first["pageInfo"]["hasNextPage"]:
        die("the first page is not a full page with a next one")
    pg = Client(a.postgraphile)
    pdeep = pg.post({"query": PAGE_PG, "variables": {"offset": a.profiles - 100}})["allProfiles"]
    if [n["profileId"] for n in pdeep["nodes"]] != [e["node"]["profileId"] for e in deep["edges"]]:
        die("PostGraphile's offset page and usersvc's deep keyset page differ")
    print(f"deep cursor: row {a.profiles - 100} of {a.profiles}; both servers return the same last 100 rows")


def cmd_iterate(a):
    c = Client(a.url, token_of(a), timeout=120)
    deadline = time.monotonic() + a.max_seconds
    max_pages = a.expect // 500 + 100
    # Warm-up: a few pages, not timed.
    after = None
    for _ in range(3):
        page = c.post({"query": ITERATE, "variables": {"after": after}})["users"]
        after = page["pageInfo"]["endCursor"]
    seen = pages = 0
    after = None
    last_id = None
    started = time.monotonic()
    while pages < max_pages and time.monotonic() < deadline:
        page = c.post({"query": ITERATE, "variables": {"after": after}})["users"]
        pages += 1
        nodes = page["nodes"]
        seen += len(nodes)
        if nodes:
            last_id = nodes[-1]["profileId"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    seconds = time.monotonic() - started
    if seen < a.expect:
        die(f"the walk saw {seen} profiles of {a.expect} in {pages} pages ({seconds:.1f} s)")
    print(json.dumps({"seconds": round(seconds, 3), "profiles": seen, "pages": pages,
                      "profiles_per_second": round(seen / seconds, 1), "last": last_id}))


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


# --- the report --------------------------------------------------------------------------

GOALS = [
    # key, comparison, goal, what
    ("userinfo_vs_postgraphile", ">=", 3.0,
     "userInfo(profileId) with identities, random existing ids: usersvc req/s ÷ PostGraphile req/s"),
    ("userinfo_vs_pgbench", ">=", 0.40,
     "the same ÷ pgbench running the equivalent prepared SELECT at the same client count"),
    ("deep_page_ratio", "<=", 1.1,
     "median latency of users(first: 100, after: cursor of row N-100) ÷ that of the first page, "
     "both measured at once"),
    ("iterate_all_seconds", "<=", 20.0,
     "walk every profile with first: 500 pages, one client (goal: 20 s for 1,000,000)"),
    ("create_vs_argon2", ">=", 0.90,
     "createUserEmailPassword per second ÷ bare argon2id hashes per second, same parameters and cores"),
    ("p99_under_create_burst_ratio", "<=", 3.0,
     "userInfo p99 while 16 clients create users ÷ its p99 without them"),
    ("rss_mib_64conn", "<=", 64.0,
     "usersvc peak RSS (VmHWM) while 64 connections load userInfo, MiB"),
    ("verify_vs_argon2", ">=", 0.90,
     "verifyPassword (right password) per second ÷ bare argon2id verifications per second, "
     "same parameters and cores"),
    ("p99_under_verify_flood_ratio", "<=", 3.0,
     "userInfo p99 while 16 clients call verifyPassword ÷ its p99 without them"),
]


def load_raw(path):
    recs = []
    with open(path) as f:
        for line in f:
            if line.strip():
                recs.append(json.loads(line))
    return recs


def pick(recs, **kw):
    return [r for r in recs if all(r.get(k) == v for k, v in kw.items())]


def by_round(recs, scenario, target):
    return {r["round"]: r["data"] for r in pick(recs, scenario=scenario, target=target)}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def met(cmp, value, goal):
    if value is None:
        return None
    return value >= goal if cmp == ">=" else value <= goal


def cmd_report(a):
    recs = load_raw(a.raw)
    meta = json.load(open(a.meta))
    n = meta["profiles"]
    res, details = {}, {"meta": meta, "rounds": {}}

    # userInfo: usersvc, PostGraphile, pgbench per round.
    us = by_round(recs, "userinfo", "usersvc")
    pgl = by_round(recs, "userinfo", "postgraphile")
    pgb = by_round(recs, "userinfo", "pgbench")
    rounds = sorted(us)
    ui_rows = []
    for r in rounds:
        u, p, b = us[r]["rps"], pgl.get(r, {}).get("rps"), pgb.get(r, {}).get("tps")
        ui_rows.append({"round": r, "usersvc_rps": u, "postgraphile_rps": p, "pgbench_tps": b,
                        "vs_postgraphile": u / p if p else None, "vs_pgbench": u / b if b else None,
                        "usersvc_p99_ms": us[r]["latency_us"]["p99"] / 1000,
                        "postgraphile_p99_ms": pgl[r]["latency_us"]["p99"] / 1000 if r in pgl else None})
    details["rounds"]["userinfo"] = ui_rows
    res["userinfo_rps"] = med([x["usersvc_rps"] for x in ui_rows])
    res["userinfo_rps_postgraphile"] = med([x["postgraphile_rps"] for x in ui_rows])
    res["userinfo_vs_postgraphile"] = med([x["vs_postgraphile"] for x in ui_rows])
    res["userinfo_vs_pgbench"] = med([x["vs_pgbench"] for x in ui_rows])
    pgbench_tps = med([x["pgbench_tps"] for x in ui_rows])

    # Against a baseline build (USERSVC_BENCH_BASELINE_BIN), when one ran: the rate of the
    # measured build ÷ the baseline's, per round (the two ran back to back), then the median.
    def vs_baseline(scenario):
        mine, base = by_round(recs, scenario, "usersvc"), by_round(recs, scenario, "baseline")
        rows = [{"round": r, "usersvc_rps": mine[r]["rps"], "baseline_rps": base[r]["rps"],
                 "ratio": mine[r]["rps"] / base[r]["rps"] if base[r]["rps"] else None,
                 "usersvc_p99_ms": mine[r]["latency_us"]["p99"] / 1000,
                 "baseline_p99_ms": base[r]["latency_us"]["p99"] / 1000,
                 "usersvc_cpu_us": mine[r].get("cpu_us", {}).get("usersvc_other"),
                 "baseline_cpu_us": base[r].get("cpu_us", {}).get("usersvc_other")}
                for r in sorted(mine) if r in base]
        return rows
    baseline_rows = {k: vs_baseline(k) for k in ("userinfo", "create")}
    for k, rows in baseline_rows.items():
        if rows:
            details["rounds"][f"{k}_vs_baseline"] = rows
            res[f"{k}_vs_baseline"] = med([x["ratio"] for x in rows])

    # Deep page vs first page.
    first, deep = by_round(recs, "page", "usersvc-first"), by_round(recs, "page", "usersvc-deep")
    pfirst, pdeep = by_round(recs, "page", "postgraphile-first"), by_round(recs, "page", "postgraphile-deep")
    dp_rows = []
    for r in sorted(first):
        f50, d50 = first[r]["latency_us"]["p50"], deep[r]["latency_us"]["p50"]
        row = {"round": r, "first_p50_ms": f50 / 1000, "deep_p50_ms": d50 / 1000, "ratio": d50 / f50,
               "first_rps": first[r]["rps"], "deep_rps": deep[r]["rps"]}
        if r in pfirst and r in pdeep:
            pf, pd = pfirst[r]["latency_us"]["p50"], pdeep[r]["latency_us"]["p50"]
            row.update({"pg_first_p50_ms": pf / 1000, "pg_deep_p50_ms": pd / 1000, "pg_ratio": pd / pf,
                        "pg_first_rps": pfirst[r]["rps"], "pg_deep_rps": pdeep[r]["rps"]})
        dp_rows.append(row)
    details["rounds"]["page"] = dp_rows
    res["deep_page_ratio"] = med([x["ratio"] for x in dp_rows])
    pg_deep_ratio = med([x.get("pg_ratio") for x in dp_rows])

    # Walk everything.
    walks = [r["data"] for r in pick(recs, scenario="iterate")]
    details["rounds"]["iterate"] = walks
    res["iterate_all_seconds"] = med([w["seconds"] for w in walks])

    # Creates vs bare argon2id.
    cr, a2 = by_round(recs, "create", "usersvc"), by_round(recs, "create", "argon2")
    cr_rows = []
    for r in sorted(cr):
        c, h = cr[r]["rps"], a2.get(r, {}).get("hashes_per_second")
        cr_rows.append({"round": r, "creates_per_second": c, "hashes_per_second": h,
                        "ratio": c / h if h else None, "create_p50_ms": cr[r]["latency_us"]["p50"] / 1000})
    details["rounds"]["create"] = cr_rows
    res["create_vs_argon2"] = med([x["ratio"] for x in cr_rows])

    # p99 under a create burst.
    idle, burst = by_round(recs, "burst", "idle"), by_round(recs, "burst", "burst")
    bc = by_round(recs, "burst", "creates")
    b_rows = []
    for r in sorted(idle):
        i99, b99 = idle[r]["latency_us"]["p99"], burst[r]["latency_us"]["p99"]
        b_rows.append({"round": r, "idle_p99_ms": i99 / 1000, "burst_p99_ms": b99 / 1000, "ratio": b99 / i99,
                       "idle_rps": idle[r]["rps"], "burst_rps": burst[r]["rps"],
                       "creates_per_second": bc.get(r, {}).get("rps")})
    details["rounds"]["burst"] = b_rows
    res["p99_under_create_burst_ratio"] = med([x["ratio"] for x in b_rows])

    # verifyPassword vs bare argon2id verification.
    vf, av = by_round(recs, "verify", "usersvc"), by_round(recs, "verify", "argon2")
    vf_rows = []
    for r in sorted(vf):
        c, h = vf[r]["rps"], av.get(r, {}).get("verifications_per_second")
        vf_rows.append({"round": r, "verifies_per_second": c, "argon2_verifications_per_second": h,
                        "ratio": c / h if h else None, "verify_p50_ms": vf[r]["latency_us"]["p50"] / 1000})
    details["rounds"]["verify"] = vf_rows
    res["verify_vs_argon2"] = med([x["ratio"] for x in vf_rows])

    # p99 during a verifyPassword flood.
    fidle, fbusy = by_round(recs, "flood", "idle"), by_round(recs, "flood", "flood")
    fv = by_round(recs, "flood", "verifies")
    f_rows = []
    for r in sorted(fidle):
        if r not in fbusy:
            continue
        i99, b99 = fidle[r]["latency_us"]["p99"], fbusy[r]["latency_us"]["p99"]
        f_rows.append({"round": r, "idle_p99_ms": i99 / 1000, "flood_p99_ms": b99 / 1000, "ratio": b99 / i99,
                       "idle_rps": fidle[r]["rps"], "flood_rps": fbusy[r]["rps"],
                       "verifies_per_second": fv.get(r, {}).get("rps")})
    details["rounds"]["verify_flood"] = f_rows
    res["p99_under_verify_flood_ratio"] = med([x["ratio"] for x in f_rows])

    # RSS.
    rss = [r["data"] for r in pick(recs, scenario="rss")]
    details["rounds"]["rss"] = rss
    rss_long = [r["data"] for r in pick(recs, scenario="rss-long")]
    details["rounds"]["rss_long"] = rss_long
    res["rss_mib_64conn"] = max((x["vmhwm_mib"] for x in rss), default=None)
    res["profiles"] = n

    # CPU per request (rounds recorded with cpu-snap), medians over the rounds.
    cpu_rows = []
    for scenario, target, label in (("userinfo", "usersvc", "userInfo, usersvc"),
                                    ("userinfo", "postgraphile", "userInfo, PostGraphile"),
                                    ("userinfo", "pgbench", "userInfo's SELECT, pgbench"),
                                    ("create", "usersvc", "createUserEmailPassword, usersvc"),
                                    ("create", "argon2", "bare argon2id hash"),
                                    ("verify", "usersvc", "verifyPassword, usersvc"),
                                    ("verify", "argon2", "bare argon2id verification")):
        per = [d["cpu_us"] for d in by_round(recs, scenario, target).values() if "cpu_us" in d]
        if per:
            row = {k: med([x[k] for x in per]) for k in per[0]}
            row["busy"] = med([x["usersvc_hash"] + x["usersvc_other"] + x["postgres"] + x["rest"]
                               for x in per])
            cpu_rows.append({"what": label, "scenario": scenario, "target": target,
                             "rounds": len(per), **row})
    details["cpu_us_per_request"] = cpu_rows

    results = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}
    with open(a.results, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    details["results"] = results
    with open(a.details, "w") as f:
        json.dump(details, f, indent=2)
        f.write("\n")

    # BENCHMARKS.md
    scale = n / 1_000_000
    L = []
    L.append("# Benchmarks\n")
    L.append(f"Written by `benches/run{meta['mode_flag']}` on {meta['date']}. "
             "Re-run it to refresh this file; `target/bench/results.json` holds the same figures "
             "as numbers and `target/bench/details.json` every round.\n")
    L.append("## Results\n")
    L.append("| key | value | goal | met | what |")
    L.append("|---|---|---|---|---|")
    for key, cmp, goal, what in GOALS:
        v = res.get(key)
        g = goal
        goal_s = f"{cmp.replace('>=', '≥').replace('<=', '≤')} {goal:g}"
        if key == "iterate_all_seconds" and n != 1_000_000:
            g = goal * scale
            goal_s = f"≤ {g:.2f} ({goal:g} s per 1M, scaled to {n:,})"
        ok = met(cmp, v, g)
        L.append(f"| `{key}` | {fmt(v)} | {goal_s} | {'yes' if ok else ('**no**' if ok is False else '–')} | {what} |")
    L.append(f"| `userinfo_rps` | {fmt(res['userinfo_rps'], 0)} | – | – | usersvc userInfo req/s (median of rounds) |")
    L.append(f"| `userinfo_rps_postgraphile` | {fmt(res['userinfo_rps_postgraphile'], 0)} | – | – | PostGraphile req/s for the same (median) |")
    L.append(f"| `profiles` | {n:,} | – | – | profiles seeded (each with an EMAIL identity, one in five also EXTERNAL) |")
    for k, what in (("userinfo_vs_baseline", "userInfo req/s ÷ the baseline build's (same database, back to back)"),
                    ("create_vs_baseline", "createUserEmailPassword per second ÷ the baseline build's")):
        if k in res:
            L.append(f"| `{k}` | {fmt(res[k])} | – | – | {what} |")
    L.append("")
    L.append(f"pgbench ceiling (median): {fmt(pgbench_tps, 0)} SELECTs/s. "
             f"PostGraphile's offset paging at the same depth, one client: deep ÷ first page latency = "
             f"{fmt(pg_deep_ratio)} (usersvc's keyset paging, both pages at once on "
             f"{meta['concurrency'] // 2} connections each: "
             f"{fmt(res['deep_page_ratio'])}).\n")

    L.append("## Machine and versions\n")
    for k in ("machine", "cpu", "memory", "kernel", "os", "usersvc", "baseline", "rustc", "postgresql", "pgbench",
              "postgraphile", "node", "wrk", "python"):
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
    L.append("### userInfo with identities (req/s at concurrency %d)\n" % meta["concurrency"])
    L.append("| round | usersvc | PostGraphile | pgbench | ÷ PostGraphile | ÷ pgbench | usersvc p99 ms | PostGraphile p99 ms |")
    L.append("|---|---|---|---|---|---|---|---|")
    for x in ui_rows:
        L.append(f"| {x['round']} | {fmt(x['usersvc_rps'], 0)} | {fmt(x['postgraphile_rps'], 0)} | "
                 f"{fmt(x['pgbench_tps'], 0)} | {fmt(x['vs_postgraphile'])} | {fmt(x['vs_pgbench'])} | "
                 f"{fmt(x['usersvc_p99_ms'])} | {fmt(x['postgraphile_p99_ms'])} |")
    L.append("")
    if any(baseline_rows.values()):
        L.append(f"### Against the baseline build ({meta.get('baseline') or '?'})\n")
        L.append("Both builds on the same database, measured back to back in every round, in an "
                 "order that alternates between rounds; CPU is usersvc's own (hashing threads "
                 "apart), µs per request.\n")
        L.append("| scenario | round | measured req/s | baseline req/s | ratio | measured p99 ms | baseline p99 ms | measured CPU µs | baseline CPU µs |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for k, rows in baseline_rows.items():
            for x in rows:
                L.append(f"| {k} | {x['round']} | {fmt(x['usersvc_rps'])} | {fmt(x['baseline_rps'])} | "
                         f"{fmt(x['ratio'])} | {fmt(x['usersvc_p99_ms'])} | {fmt(x['baseline_p99_ms'])} | "
                         f"{fmt(x['usersvc_cpu_us'], 0)} | {fmt(x['baseline_cpu_us'], 0)} |")
        L.append("")
    L.append("### Deep page vs first page (median latency ms)\n")
    L.append("usersvc: the first and the deep page measured at the same time, %d connections each, "
             "so that the machine's noise slows both alike; PostGraphile's offset paging with one "
             "client (at 32 its deep requests would only queue behind each other).\n"
             % (meta["concurrency"] // 2))
    L.append("| round | usersvc first | usersvc deep | ratio | PostGraphile offset 0 | PostGraphile offset N-100 | ratio |")
    L.append("|---|---|---|---|---|---|---|")
    for x in dp_rows:
        L.append(f"| {x['round']} | {fmt(x['first_p50_ms'])} | {fmt(x['deep_p50_ms'])} | {fmt(x['ratio'])} | "
                 f"{fmt(x.get('pg_first_p50_ms'))} | {fmt(x.get('pg_deep_p50_ms'))} | {fmt(x.get('pg_ratio'))} |")
    L.append("")
    L.append("### Walking every profile (one client, first: 500)\n")
    for w in walks:
        L.append(f"- {w['profiles']:,} profiles in {w['pages']:,} pages: {w['seconds']:.2f} s "
                 f"({w['profiles_per_second']:,.0f} profiles/s)")
    L.append("")
    L.append("### createUserEmailPassword vs bare argon2id (per second)\n")
    L.append("| round | creates/s (concurrency %d) | argon2id hashes/s (%s threads) | ratio | create p50 ms |"
             % (meta["concurrency"], meta.get("cores", "?")))
    L.append("|---|---|---|---|---|")
    for x in cr_rows:
        L.append(f"| {x['round']} | {fmt(x['creates_per_second'])} | {fmt(x['hashes_per_second'])} | "
                 f"{fmt(x['ratio'])} | {fmt(x['create_p50_ms'])} |")
    L.append("")
    if cpu_rows:
        L.append("### Where the CPU went (µs per request, median of rounds)\n")
        L.append("Read from `/proc` around each round: usersvc's password hashing threads and its "
                 "other threads, the PostgreSQL cluster, everything else that ran (the load generator, "
                 "PostGraphile, the bare argon2id program, the kernel's own work), and idle time. "
                 f"The machine has {meta.get('cores', '?')} cores: at full load, busy µs per request "
                 "× requests per second ≈ cores × 1,000,000.\n")
        L.append("| measured | usersvc hashing | usersvc other | PostgreSQL | everything else | busy | idle |")
        L.append("|---|---|---|---|---|---|---|")
        for x in cpu_rows:
            L.append(f"| {x['what']} | {fmt(x['usersvc_hash'], 0)} | {fmt(x['usersvc_other'], 0)} | "
                     f"{fmt(x['postgres'], 0)} | {fmt(x['rest'], 0)} | {fmt(x['busy'], 0)} | "
                     f"{fmt(x['idle'], 0)} |")
        L.append("")
    L.append("### userInfo p99 with and without 16 clients creating users\n")
    L.append("| round | idle p99 ms | burst p99 ms | ratio | idle req/s | burst req/s | creates/s meanwhile |")
    L.append("|---|---|---|---|---|---|---|")
    for x in b_rows:
        L.append(f"| {x['round']} | {fmt(x['idle_p99_ms'])} | {fmt(x['burst_p99_ms'])} | {fmt(x['ratio'])} | "
                 f"{fmt(x['idle_rps'], 0)} | {fmt(x['burst_rps'], 0)} | {fmt(x['creates_per_second'])} |")
    L.append("")
    if vf_rows:
        L.append("### verifyPassword vs bare argon2id verification (per second)\n")
        L.append("Logins with the right password, spread over the userInfo ids (their EMAIL identities "
                 "get one argon2id hash of the same parameters), so each succeeds and is recorded; the "
                 "bare program checks the same password against such a hash on one thread per core.\n")
        L.append("| round | verifyPassword/s (concurrency %d) | argon2id verifications/s (%s threads) | ratio | verify p50 ms |"
                 % (meta["concurrency"], meta.get("cores", "?")))
        L.append("|---|---|---|---|---|")
        for x in vf_rows:
            L.append(f"| {x['round']} | {fmt(x['verifies_per_second'])} | {fmt(x['argon2_verifications_per_second'])} | "
                     f"{fmt(x['ratio'])} | {fmt(x['verify_p50_ms'])} |")
        L.append("")
    if f_rows:
        L.append("### userInfo p99 with and without 16 clients calling verifyPassword\n")
        L.append("| round | idle p99 ms | flood p99 ms | ratio | idle req/s | flood req/s | verifies/s meanwhile |")
        L.append("|---|---|---|---|---|---|---|")
        for x in f_rows:
            L.append(f"| {x['round']} | {fmt(x['idle_p99_ms'])} | {fmt(x['flood_p99_ms'])} | {fmt(x['ratio'])} | "
                     f"{fmt(x['idle_rps'], 0)} | {fmt(x['flood_rps'], 0)} | {fmt(x['verifies_per_second'])} |")
        L.append("")
    L.append("### Memory\n")
    for x in rss:
        L.append(f"- peak RSS (VmHWM) {x['vmhwm_mib']:.1f} MiB, RSS at the end {x['vmrss_mib']:.1f} MiB, "
                 f"while 64 connections ran {x['rps']:,.0f} userInfo req/s on a freshly started usersvc")
    for x in rss_long:
        L.append(f"- the usersvc that served the read scenarios before it ({x['requests']:,} requests, "
                 f"before any create): "
                 f"peak RSS {x['vmhwm_mib']:.1f} MiB, RSS at the end {x['vmrss_mib']:.1f} MiB")
    L.append("")
    method = os.path.join(os.path.dirname(os.path.abspath(__file__)), "METHOD.md")
    if os.path.exists(method):
        L.append(open(method).read().rstrip() + "\n")
    findings = os.path.join(os.path.dirname(os.path.abspath(__file__)), "FINDINGS.md")
    if os.path.exists(findings):
        L.append(open(findings).read().rstrip() + "\n")
    write(a.markdown, "\n".join(L))

    print()
    print(f"{'key':32} {'value':>12}  goal")
    for key, cmp, goal, _ in GOALS:
        v = res.get(key)
        g = goal * scale if key == "iterate_all_seconds" else goal
        ok = met(cmp, v, g)
        print(f"{key:32} {fmt(v):>12}  {cmp} {g:g}  {'ok' if ok else 'MISSED'}")
    print(f"{'userinfo_rps':32} {fmt(res['userinfo_rps'], 0):>12}")
    print(f"{'userinfo_rps_postgraphile':32} {fmt(res['userinfo_rps_postgraphile'], 0):>12}")
    print(f"{'profiles':32} {n:>12,}")
    for k in ("userinfo_vs_baseline", "create_vs_baseline"):
        if k in res:
            print(f"{k:32} {fmt(res[k]):>12}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("bodies"); s.add_argument("dir"); s.set_defaults(f=cmd_bodies)
    s = sub.add_parser("pgbench-script"); s.add_argument("file"); s.add_argument("--ids", type=int, required=True)
    s.set_defaults(f=cmd_pgbench_script)
    s = sub.add_parser("check")
    s.add_argument("--usersvc", required=True); s.add_argument("--postgraphile", required=True)
    s.add_argument("--token-file", required=True); s.add_argument("--ids", required=True)
    s.add_argument("--samples", type=int, default=20); s.set_defaults(f=cmd_check)
    s = sub.add_parser("deep-cursor")
    s.add_argument("--url", required=True); s.add_argument("--postgraphile", required=True)
    s.add_argument("--token-file", required=True); s.add_argument("--profiles", type=int, required=True)
    s.add_argument("--dir", required=True); s.set_defaults(f=cmd_deep_cursor)
    s = sub.add_parser("iterate")
    s.add_argument("--url", required=True); s.add_argument("--token-file", required=True)
    s.add_argument("--expect", type=int, required=True); s.add_argument("--max-seconds", type=float, default=900)
    s.set_defaults(f=cmd_iterate)
    s = sub.add_parser("parse-wrk"); s.add_argument("file"); s.set_defaults(f=cmd_parse_wrk)
    s = sub.add_parser("fold"); s.set_defaults(f=cmd_fold)
    s = sub.add_parser("statements"); s.set_defaults(f=cmd_statements)
    s = sub.add_parser("parse-pgbench"); s.add_argument("file"); s.set_defaults(f=cmd_parse_pgbench)
    s = sub.add_parser("cpu-snap")
    s.add_argument("--usersvc", required=True); s.add_argument("--postmaster", required=True)
    s.set_defaults(f=cmd_cpu_snap)
    s = sub.add_parser("record")
    s.add_argument("raw"); s.add_argument("fields", nargs="*")
    s.add_argument("--json"); s.add_argument("--wrk"); s.add_argument("--pgbench")
    s.add_argument("--cpu", nargs=2, metavar=("BEFORE", "AFTER"),
                   help="cpu-snap files taken around the measurement: adds CPU per request")
    s.set_defaults(f=cmd_record)
    s = sub.add_parser("report")
    for o in ("raw", "meta", "results", "details", "markdown"):
        s.add_argument(f"--{o}", required=True)
    s.set_defaults(f=cmd_report)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
