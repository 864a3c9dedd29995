#!/usr/bin/env python3
"""Extracts every SQL query of a Grafana dashboard (panel targets and query variables) into
numbered files, with the dashboard variables and the Grafana macros it uses substituted the way
Grafana would, so a test can run each against a real server.

    grafana_queries.py DASHBOARD.json OUTDIR database=NAME

Prints one line per query: FILE<TAB>FORMAT<TAB>TITLE. Exits non-zero when a query uses a
variable or macro this script does not know (the test must not silently skip it)."""
import json, re, sys

dashboard, outdir = sys.argv[1], sys.argv[2]
variables = dict(a.split("=", 1) for a in sys.argv[3:])
d = json.load(open(dashboard))

def substitute(sql):
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", r"\1 BETWEEN now() - interval '3 hours' AND now()", sql)
    for name, value in variables.items():
        sql = sql.replace("${%s}" % name, value).replace("$" + name, value)
    left = re.findall(r"\$\{?\w+", sql)
    if left:
        sys.exit("unknown variable or macro %s in: %s" % (left, sql))
    return sql

queries = []
for v in d.get("templating", {}).get("list", []):
    if v.get("type") == "query":
        queries.append(("variable " + v["name"], "table", v["query"]))
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            queries.append((p["title"], t.get("format", "table"), t["rawSql"]))
walk(d["panels"])
for i, (title, fmt, sql) in enumerate(queries, 1):
    path = "%s/q%03d.sql" % (outdir, i)
    with open(path, "w") as f:
        f.write(substitute(sql) + "\n")
    print("%s\t%s\t%s" % (path, fmt, title))
