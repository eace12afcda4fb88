#!/usr/bin/env python3
"""Prints, from Surefire's XML reports, every skipped test and why it was skipped (its assumption's message).

./build test calls it after the run, so CI's log says which Python- or TornadoVM-dependent tests did not run and
why, instead of counting them silently as passed."""
import glob
import sys
import xml.etree.ElementTree as ET

root = sys.argv[1] if len(sys.argv) > 1 else "."
skipped = []
empty = []
seen = set()
for report in sorted(glob.glob(f"{root}/**/target/surefire-reports/TEST-*.xml", recursive=True)):
    try:
        suite = ET.parse(report).getroot()
    except ET.ParseError as e:
        print(f"  (unreadable report {report}: {e})")
        continue
    if int(suite.get("tests", "0")) == 0:
        empty.append(f"  {suite.get('name')}: no test ran (a failed assumption in @BeforeAll?)")
    for case in suite.iter("testcase"):
        s = case.find("skipped")
        if s is not None:
            why = (s.get("message") or s.text or "no reason given").strip().splitlines()[0]
            line = f"  {case.get('classname')}.{case.get('name')}: {why}"
            if line not in seen:  # one test's reason once, even where a module's reports are read twice
                seen.add(line)
                skipped.append(line)
if skipped:
    print(f"Skipped tests ({len(skipped)}), with the reason each gave:")
    print("\n".join(skipped))
else:
    print("Skipped tests: none")
if empty:
    print("Test classes in which no test ran:")
    print("\n".join(empty))
