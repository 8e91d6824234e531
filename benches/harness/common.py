"""What the harness's Python parts share: messages, files, request bodies, one HTTP client
for GraphQL endpoints on the loopback, and the small statistics of the report."""

import http.client
import json
import statistics
import sys
import urllib.parse


def die(msg):
    print(f"bench.py: {msg}", file=sys.stderr)
    sys.exit(1)


def body(query, variables):
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":"))


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


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



# --- records and figures -------------------------------------------------------------------


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

