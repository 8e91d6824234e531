#!/usr/bin/env python3
"""Import and export benchmarks for usersvc (called by benches/run after its report).

  import_1m_seconds      wall time of `usersvc import` of an NDJSON file of users with bcrypt
                         hashes (1,000,000 in a full run; smaller runs are scaled to a million
                         and say so)
  import_rss_mib         peak RSS of that import process (VmHWM, from wait4's rusage)
  export_1m_seconds      wall time of `usersvc export --include-password-hashes` of the same app
  import_users_http_rows_per_second
                         users per second through importUsers over HTTP, batches of 1,000 sent
                         one after the other by one client

Hashing a million passwords with bcrypt would take hours, and the import never hashes a given
hash: the file reuses four bcrypt hashes (cost 10, made once with Python's bcrypt package), which
costs the import exactly what a million distinct ones would. After the import one user's
password is checked with verifyPassword, so a figure is only kept when the hashes work.

Adds the figures to results.json, details to imports.json beside it, and a section to the
Markdown report. Everything runs against the harness's database and server on 127.0.0.1.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time
import urllib.request

from harness.measure import stat_fields, ticks

# (password, bcrypt hash of it)
HASHES = [
    ("import-bench-0", "$2b$10$xtpwjLgORwyy2HomH7h3GupuGgB1x6x5gRY6kZsjm/Oh6I9ShkY8i"),
    ("import-bench-1", "$2b$10$npA16/RN7f0uTBafKK12kuhl1P8dA.5S0xBKdYWV2REVOoJKQy0Z2"),
    ("import-bench-2", "$2b$10$SNqHyrjy7C5rsPe.iVWAxOApK.R9eWvZFCxiHtQebqxDYMH1s93Ee"),
    ("import-bench-3", "$2b$10$bXxouzsRz4w6CCpWqZydaulNcYz8ubAjd03eZ5UDbQJshnepsSeq2"),
]
USERS = {"full": 1_000_000, "quick": 100_000, "smoke": 3_000}
HTTP_USERS = {"full": 50_000, "quick": 20_000, "smoke": 2_000}


def user(prefix, i):
    return {
        "identities": [{"type": "EMAIL", "externalId": f"{prefix}-{i}@import.example",
                        "passwordHash": HASHES[i % len(HASHES)][1]}],
        "userName": f"Imported user {i}",
        "countryCode": "CA",
        "createdAt": "2021-06-01T12:00:00Z",
    }


def write_file(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps(user("file", i), separators=(",", ":")))
            f.write("\n")


def pg_seconds(postmaster):
    """CPU seconds the PostgreSQL cluster has used so far (see harness.measure.cmd_cpu_snap)."""
    if not postmaster:
        return 0.0
    t = ticks(stat_fields(f"/proc/{postmaster}/stat"), children=True)
    for stat in glob.glob("/proc/[0-9]*/stat"):
        fields = stat_fields(stat)
        if fields is not None and fields[1] == str(postmaster):
            t += ticks(fields)
    return t / os.sysconf("SC_CLK_TCK")


def timed(cmd, postmaster=None):
    """Runs cmd; returns (seconds, peak RSS in MiB, stdout, CPU seconds of the command and of
    PostgreSQL while it ran)."""
    pg_before = pg_seconds(postmaster)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"imports.py: {' '.join(cmd)} failed: {err.decode()[-2000:]}")
    cpu = {"usersvc": round(usage.ru_utime + usage.ru_stime, 2),
           "postgres": round(pg_seconds(postmaster) - pg_before, 2)}
    return seconds, usage.ru_maxrss / 1024, out.decode(), cpu


def gql(url, token, query, variables, timeout=120):
    body = json.dumps({"query": query, "variables": variables}).encode()
    req = urllib.request.Request(url, data=body, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    doc = json.load(urllib.request.urlopen(req, timeout=timeout))
    if doc.get("errors"):
        sys.exit(f"imports.py: GraphQL errors: {json.dumps(doc['errors'])[:500]}")
    return doc["data"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True)
    p.add_argument("--url", required=True, help="usersvc's /graphql")
    p.add_argument("--token-file", required=True, help="a token of the harness's app with the import scope")
    p.add_argument("--mode", choices=sorted(USERS), default="full")
    p.add_argument("--work", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--markdown")
    p.add_argument("--postmaster", help="the cluster's postmaster pid (for the CPU figures)")
    a = p.parse_args()
    n, n_http = USERS[a.mode], HTTP_USERS[a.mode]
    os.makedirs(a.work, exist_ok=True)
    token = open(a.token_file).read().strip()
    app = f"import{os.getpid()}"
    scale = 1_000_000 / n

    print(f"  writing {n} users to an NDJSON file", flush=True)
    path = os.path.join(a.work, "import.ndjson")
    write_file(path, n)
    size_mib = os.path.getsize(path) / 1048576
    subprocess.run([a.bin, "app", "create", "--id", app, "--name", "import benchmark"],
                   check=True, stdout=subprocess.DEVNULL)

    load = os.getloadavg()[0]
    seconds, rss, out, import_cpu = timed([a.bin, "import", "--app", app, path], a.postmaster)
    print(f"  {out.strip()}\n  import: {seconds:.1f} s, peak RSS {rss:.1f} MiB "
          f"({size_mib:.0f} MiB file, load average {load:.1f}; CPU seconds: "
          f"usersvc {import_cpu['usersvc']}, PostgreSQL {import_cpu['postgres']})", flush=True)
    if f"{n} created" not in out:
        sys.exit(f"imports.py: the import did not create {n} users: {out}")

    exported = os.path.join(a.work, "export.ndjson")
    load_export = os.getloadavg()[0]
    export_seconds, export_rss, out, export_cpu = timed(
        [a.bin, "export", "--app", app, "--out", exported, "--include-password-hashes"],
        a.postmaster)
    with open(exported) as f:
        lines = sum(1 for _ in f)
    if lines != n:
        sys.exit(f"imports.py: the export wrote {lines} lines, not {n}")
    print(f"  export: {export_seconds:.1f} s, peak RSS {export_rss:.1f} MiB (CPU seconds: "
          f"usersvc {export_cpu['usersvc']}, PostgreSQL {export_cpu['postgres']})", flush=True)

    # importUsers over HTTP, into the harness's app (the token's), batches of 1,000.
    query = ("mutation($in: ImportUsersInput!) { importUsers(input: $in) "
             "{ created failed results { status error { code message } } } }")
    created, started = 0, time.monotonic()
    for b in range(0, n_http, 1000):
        batch = [user(f"http{os.getpid()}", i) for i in range(b, min(b + 1000, n_http))]
        data = gql(a.url, token, query, {"in": {"users": batch}})["importUsers"]
        if data["failed"]:
            sys.exit(f"imports.py: importUsers failed users: {json.dumps(data)[:500]}")
        created += data["created"]
    http_seconds = time.monotonic() - started
    http_rps = created / http_seconds
    print(f"  importUsers over HTTP: {created} users in {http_seconds:.1f} s = {http_rps:.0f} users/s",
          flush=True)

    # A bcrypt password, checked after the import, then upgraded to argon2id.
    password, _ = HASHES[7 % len(HASHES)]
    login = gql(a.url, token, "mutation($in: VerifyPasswordInput!) { verifyPassword(input: $in) "
                "{ user { profileId } } }",
                {"in": {"type": "EMAIL", "externalId": f"http{os.getpid()}-7@import.example",
                        "password": password}})
    assert login["verifyPassword"]["user"]["profileId"]

    figures = {
        "import_1m_seconds": round(seconds * scale, 2),
        "export_1m_seconds": round(export_seconds * scale, 2),
        "import_rss_mib": round(rss, 1),
        "import_users_http_rows_per_second": round(http_rps, 1),
    }
    details = {"users": n, "scaled_to_1m_by": scale, "file_mib": round(size_mib, 1),
               "import_seconds": round(seconds, 2), "export_seconds": round(export_seconds, 2),
               "export_rss_mib": round(export_rss, 1), "http_users": created,
               "http_seconds": round(http_seconds, 2),
               "load_average_at_import": round(load, 2),
               "load_average_at_export": round(load_export, 2),
               "import_cpu_seconds": import_cpu, "export_cpu_seconds": export_cpu, **figures}
    with open(a.results) as f:
        results = json.load(f)
    results.update(figures)
    with open(a.results, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    with open(os.path.join(os.path.dirname(a.results), "imports.json"), "w") as f:
        json.dump(details, f, indent=2)
        f.write("\n")
    if a.markdown:
        scaled = "" if n == 1_000_000 else f" (measured on {n:,} users, scaled to a million)"
        with open(a.markdown, "a") as f:
            f.write(f"""
## Import and export

`benches/imports.py`{scaled}: an NDJSON file of {n:,} users with bcrypt hashes
({size_mib:.0f} MiB) through `usersvc import`, then `usersvc export --include-password-hashes` of
the same app; the load average was {load:.1f} when the import started.

| figure | value | goal |
|---|---|---|
| `import_1m_seconds` | {figures['import_1m_seconds']} s | ≤ 60 s |
| `export_1m_seconds` | {figures['export_1m_seconds']} s | ≤ 15 s |
| `import_rss_mib` (peak RSS of the import process) | {figures['import_rss_mib']} MiB | ≤ 128 MiB |
| `import_users_http_rows_per_second` (importUsers, batches of 1,000, one client) | {figures['import_users_http_rows_per_second']} | – |
""")
    for k, v in figures.items():
        print(f"  {k} = {v}")


if __name__ == "__main__":
    main()
