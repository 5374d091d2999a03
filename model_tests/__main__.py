"""python -m model_tests check MODEL_URI [--holdout FILE] [--policy FILE] [--json]
python -m model_tests compare MODEL --challenger V [--champion V] [--holdout FILE]
                               [--policy FILE] [--json]

check: exit 0 when every check passes, 1 when any fails. compare: exit 0 when the
challenger wins, 1 when it does not. Either: 2 when the run itself fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m model_tests", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("model_uri")
    k = sub.add_parser("compare")
    k.add_argument("model")
    k.add_argument("--challenger", required=True)
    k.add_argument("--champion")
    for p in (c, k):
        p.add_argument("--holdout")
        p.add_argument("--policy")
        p.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from model_tests import runner
    from model_tests.checks import summary
    from model_tests.config import read_policy
    from model_tests.context import model_name

    try:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the result
            if args.command == "check":
                judge = read_policy(args.policy, model_name(args.model_uri))
                results = runner.check_in_process(args.model_uri, judge, args.holdout)
            else:
                judge = read_policy(args.policy, args.model)
                report = runner.compare_in_process(args.model, args.challenger, args.champion,
                                                   judge, args.holdout)
    except Exception as exc:
        print(f"{args.command} run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.command == "compare":
        print(json.dumps(report.as_json()) if args.json else report.line())
        return 0 if report.wins else 1
    if args.json:
        print(json.dumps({"model_uri": args.model_uri, "summary": summary(results),
                          "checks": [r.as_json() for r in results]}, default=str))
    else:
        for r in results:
            print(f"{'PASS' if r.passed else 'FAIL'}  {r.category:<12} {r.name:<24} {r.reason}")
        print(summary(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
