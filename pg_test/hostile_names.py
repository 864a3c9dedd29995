#!/usr/bin/env python3
"""Every function name and operator pgops' SQL could call, read mechanically from its sources.

The hostile-tenant scenario plants a look-alike of each pg_catalog function, aggregate and
operator whose name appears here. It reads all of src/ and crates/*/src/ (Rust: SQL in string
literals) and sql/ with sql/queries/ (the install script's files and the catalog queries; not
sql/released/), so a query added later is covered
without anyone extending a list. Over-inclusion (a Rust call that happens to share a name with a
pg_catalog function) only plants more.

    hostile_names.py REPO   ->  {"functions": [...], "operators": [...]}   (JSON on stdout)
"""
import json
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
files = (sorted(root.glob("src/**/*.rs")) + sorted(root.glob("crates/*/src/**/*.rs"))
         + sorted(f for f in root.glob("sql/**/*.sql") if "released" not in f.parts))
functions, operators = set(), set()
for f in files:
    text = f.read_text(encoding="utf-8")
    functions |= {m.lower() for m in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", text)}
    operators |= set(re.findall(r"[-+*/<>=~!@#%^&|?]{1,3}", text))
    # Keywords the parser turns into operator calls: LIKE, ILIKE, IN, BETWEEN, IS DISTINCT FROM,
    # NULLIF, CASE x WHEN, ANY/ALL, ORDER BY (sort operators come from the type's default opclass,
    # which only a superuser can create, but plant the comparisons anyway).
    if re.search(r"\bNOT\s+LIKE\b", text, re.I):
        operators.add("!~~")
    if re.search(r"\bLIKE\b", text, re.I):
        operators.add("~~")
    if re.search(r"\bILIKE\b", text, re.I):
        operators |= {"~~*", "!~~*"}
for implied in ["=", "<>", "<", ">", "<=", ">=", "||"]:
    operators.add(implied)
if "!=" in operators:
    operators.add("<>")
json.dump({"functions": sorted(functions), "operators": sorted(operators), "files": len(files)}, sys.stdout)
