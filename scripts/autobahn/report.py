#!/usr/bin/env python3
"""Spec files in and verdicts out for scripts/conformance.sh.

    report.py spec TEMPLATE OUT --url URL --outdir DIR --cases ID...
        writes a wstest spec: TEMPLATE (fuzzingclient.json or
        fuzzingserver.json next to this file) with the URL, report folder and
        case list filled in.

    report.py table FOLDER...
        prints a Markdown table of verdict counts, one row per run folder
        (target/autobahn/<run>), as in the README.

    report.py check INDEX --name NAME --deflate on|off [--expect N]
        reads the suite's index.json and prints one line
        `NAME: P passed, F failed, I informational[, U unimplemented]`,
        preceded by one line per case that is not acceptable. Exit status 1 if
        any case is not acceptable or the report is missing cases.

A case is acceptable when its verdict (`behavior`) is OK or INFORMATIONAL, or
UNIMPLEMENTED for a 12.* or 13.* (permessage-deflate) case in a run whose
endpoint does not offer or accept the extension, and its closing-handshake
verdict (`behaviorClose`) is OK or INFORMATIONAL. FAILED, NON-STRICT, any
other UNIMPLEMENTED, and anything else count as failed. `passed` counts OK
verdicts; `informational` and `unimplemented` count the acceptable rest.
"""

import argparse
import json
import sys

GOOD_CLOSE = {"OK", "INFORMATIONAL"}


def write_spec(args):
    with open(args.template, encoding="utf-8") as f:
        spec = json.load(f)
    spec["outdir"] = args.outdir
    spec["cases"] = args.cases
    if "servers" in spec:
        for server in spec["servers"]:
            server["url"] = args.url
    else:
        spec["url"] = args.url
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")


def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


def compression_case(case_id):
    return case_id.split(".")[0] in ("12", "13")


def check(args):
    try:
        with open(args.index, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{args.name}: no report ({e})")
        print(f"{args.name}: 0 passed, 1 failed, 0 informational")
        return 1
    cases = {}
    for agent_cases in index.values():
        cases.update(agent_cases)
    ok = informational = unimplemented = 0
    bad = []
    for case_id in sorted(cases, key=case_key):
        result = cases[case_id]
        behavior = result.get("behavior")
        close = result.get("behaviorClose")
        if behavior == "UNIMPLEMENTED":
            acceptable = args.deflate == "off" and compression_case(case_id)
        else:
            acceptable = behavior in ("OK", "INFORMATIONAL")
        acceptable = acceptable and close in GOOD_CLOSE
        if not acceptable:
            bad.append(case_id)
            print(
                f"  {case_id}: {behavior}, closing handshake {close}, "
                f"remote close code {result.get('remoteCloseCode')} "
                f"({result.get('reportfile')})"
            )
        elif behavior == "OK":
            ok += 1
        elif behavior == "INFORMATIONAL":
            informational += 1
        else:
            unimplemented += 1
    missing = 0
    if args.expect is not None and len(cases) != args.expect:
        missing = max(args.expect - len(cases), 1)
        print(f"  the report has {len(cases)} cases, {args.expect} expected")
    line = f"{args.name}: {ok} passed, {len(bad) + missing} failed, {informational} informational"
    if unimplemented:
        line += f", {unimplemented} unimplemented (permessage-deflate off)"
    print(line)
    return 1 if bad or missing else 0


def table(args):
    """One Markdown row per report folder: verdict counts, as in the README."""
    verdicts = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
    print("| run | cases | " + " | ".join(verdicts) + " |")
    print("|---|---:|" + "---:|" * len(verdicts))
    for folder in args.folders:
        with open(f"{folder}/index.json", encoding="utf-8") as f:
            index = json.load(f)
        counts = dict.fromkeys(verdicts, 0)
        total = 0
        for agent_cases in index.values():
            for result in agent_cases.values():
                behavior = result.get("behavior")
                counts[behavior if behavior in counts else "FAILED"] += 1
                total += 1
        name = folder.rstrip("/").rsplit("/", 1)[-1].replace("-", " ", 2)
        print(f"| {name} | {total} | " + " | ".join(str(counts[v]) for v in verdicts) + " |")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    spec = sub.add_parser("spec")
    spec.add_argument("template")
    spec.add_argument("out")
    spec.add_argument("--url", required=True)
    spec.add_argument("--outdir", required=True)
    spec.add_argument("--cases", nargs="+", required=True)
    chk = sub.add_parser("check")
    chk.add_argument("index")
    chk.add_argument("--name", required=True)
    chk.add_argument("--deflate", choices=("on", "off"), required=True)
    chk.add_argument("--expect", type=int)
    tab = sub.add_parser("table")
    tab.add_argument("folders", nargs="+")
    args = parser.parse_args()
    if args.command == "table":
        return table(args)
    if args.command == "spec":
        write_spec(args)
        return 0
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
