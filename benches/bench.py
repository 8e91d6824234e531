#!/usr/bin/env python3
"""Helper of benches/run: request bodies, checks, the paging walks, result parsing and the
report. Standard library only (Python 3.9+). The code is in benches/harness/ (shared parts)
and benches/scenarios/NAME.py (each scenario's figures); this file is the command line.

Subcommands (all print to stdout; errors exit non-zero with a message):
  bodies DIR                      write the GraphQL request bodies the load generators send
  pgbench-script FILE             the pgbench script equivalent to userInfo-with-identities
  check ...                       usersvc and each PostGraphile return the same user for sample ids
  deep-cursor ...                 the cursor of row N-100 (from users(last: 101)) -> body files
  iterate ...                     walk every profile with first: 500, one client; JSON out
  parse-wrk FILE                  the BENCHJSON line of a wrk run, as JSON
  fold                            `perf script` on stdin -> folded stacks (flamegraph input)
  statements                      PostgreSQL's statement log on stdin -> counts per request kind
  parse-pgbench FILE              tps and latency of a pgbench run, as JSON
  cpu-snap ...                    CPU time so far of usersvc, PostgreSQL and the machine
  record RAW KEY=VALUE... [--json FILE|-]   append one measurement to the raw JSONL file
  login-password                  the password the verifyPassword scenario logs in with
  report ...                      medians and ratios -> results.json, details.json, BENCHMARKS.md
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness.checks import cmd_check, cmd_deep_cursor, cmd_iterate  # noqa: E402
from harness.measure import (  # noqa: E402
    cmd_cpu_snap, cmd_fold, cmd_parse_pgbench, cmd_parse_wrk, cmd_record, cmd_statements)
from harness.report import cmd_report  # noqa: E402
from harness.requests import LOGIN_PASSWORD, cmd_bodies, cmd_pgbench_script  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("bodies"); s.add_argument("dir"); s.set_defaults(f=cmd_bodies)
    s = sub.add_parser("pgbench-script"); s.add_argument("file"); s.add_argument("--ids", type=int, required=True)
    s.set_defaults(f=cmd_pgbench_script)
    s = sub.add_parser("check")
    s.add_argument("--usersvc", required=True)
    s.add_argument("--postgraphile", required=True, action="append", help="repeatable")
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
    s = sub.add_parser("login-password"); s.set_defaults(f=lambda a: print(LOGIN_PASSWORD))
    s = sub.add_parser("report")
    for o in ("raw", "meta", "results", "details", "markdown"):
        s.add_argument(f"--{o}", required=True)
    s.set_defaults(f=cmd_report)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
