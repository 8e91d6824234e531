"""Checks before the measurements (the peers answer the same), the deep cursor, and the walk
over every profile."""

import json
import re
import time

from .common import Client, body, die, read_ids, token_of, write
from .requests import ITERATE, PAGE, PAGE_PG, USERINFO, USERINFO_PG


def norm(v):
    """A value as both servers should agree on it: numbers as floats, timestamps with six
    fractional digits (.760 and .76 are the same instant) and +00:00 for UTC."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)", v)
        if m:
            frac = (m.group(2) or "").ljust(6, "0")
            tz = "+00:00" if m.group(3) in ("Z", "+00:00") else m.group(3)
            return f"{m.group(1)}.{frac}{tz}"
    return v


def cmd_check(a):
    """usersvc and each PostGraphile (v4 and v5 take the same query) return the same user,
    fields and identities, for a sample of ids."""
    ids = read_ids(a.ids)
    us = Client(a.usersvc, token_of(a))
    pgs = [Client(url) for url in a.postgraphile]
    step = max(1, len(ids) // a.samples)
    checked = with_external = 0
    for pid in ids[::step][: a.samples]:
        for pg, url in zip(pgs, a.postgraphile):
            u = us.post({"query": USERINFO, "variables": {"id": pid}})["userInfo"]
            p = pg.post({"query": USERINFO_PG, "variables": {"id": pid}})["profileByAppIdAndProfileId"]
            if u is None or p is None:
                die(f"profile {pid} missing: usersvc={u is not None} {url}={p is not None}")
            pid_u = u.pop("profileId")
            pid_p = p.pop("profileId")
            ids_u = u.pop("identities")
            ids_p = p.pop("identitiesByAppIdAndProfileId")["nodes"]
            if pid_u != pid_p or {k: norm(v) for k, v in u.items()} != {k: norm(v) for k, v in p.items()}:
                die(f"different profile {pid}:\n usersvc      {u}\n {url} {p}")
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
                die(f"different identities of {pid}:\n usersvc      {ids_u}\n {url} {ids_p}")
        checked += 1
        with_external += len(ids_u) > 1
    print(f"same answers from usersvc and {len(pgs)} PostGraphile server(s) for {checked} profiles "
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

