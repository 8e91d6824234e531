"""Walking every profile with first: 500, one client."""

from harness.common import med

GOALS = [
    ("iterate_all_seconds", "<=", 20.0,
     "walk every profile with first: 500 pages, one client (goal: 20 s for 1,000,000)", True),
]


def report(r):
    walks = [x["data"] for x in r.pick(scenario="iterate")]
    r.details["rounds"]["iterate"] = walks
    r.res["iterate_all_seconds"] = med([w["seconds"] for w in walks])
    L = r.sections
    L.append("### Walking every profile (one client, first: 500)\n")
    for w in walks:
        L.append(f"- {w['profiles']:,} profiles in {w['pages']:,} pages: {w['seconds']:.2f} s "
                 f"({w['profiles_per_second']:,.0f} profiles/s)")
    L.append("")
