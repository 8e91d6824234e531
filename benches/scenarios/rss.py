"""Memory: a fresh usersvc under 64 connections, and the one that served the read scenarios
(recorded by rss_long.sh)."""

GOALS = [
    ("rss_mib_64conn", "<=", 64.0,
     "usersvc peak RSS (VmHWM) while 64 connections load userInfo, MiB"),
]


def report(r):
    rss = [x["data"] for x in r.pick(scenario="rss")]
    rss_long = [x["data"] for x in r.pick(scenario="rss-long")]
    r.details["rounds"]["rss"] = rss
    r.details["rounds"]["rss_long"] = rss_long
    r.res["rss_mib_64conn"] = max((x["vmhwm_mib"] for x in rss), default=None)
    L = r.sections
    L.append("### Memory\n")
    for x in rss:
        L.append(f"- peak RSS (VmHWM) {x['vmhwm_mib']:.1f} MiB, RSS at the end {x['vmrss_mib']:.1f} MiB, "
                 f"while 64 connections ran {x['rps']:,.0f} userInfo req/s on a freshly started usersvc")
    for x in rss_long:
        L.append(f"- the usersvc that served the read scenarios before it ({x['requests']:,} requests, "
                 f"before any create): "
                 f"peak RSS {x['vmhwm_mib']:.1f} MiB, RSS at the end {x['vmrss_mib']:.1f} MiB")
    L.append("")
