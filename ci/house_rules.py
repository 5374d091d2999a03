"""The house's size rules, checked by `make lint`: no product module over 400 lines and no
function over 80 (docs/architecture.md). A module or a function that grows past them is split
by its jobs, not exempted.

    python ci/house_rules.py [ROOT]      exit 0 when every rule holds, 1 listing each breach
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PRODUCT = ("podium_policy", "training", "model_tests", "webhook_server")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def breaches(root: Path) -> list[str]:
    found: list[str] = []
    for package in PRODUCT:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            if "migrations" in rel.parts:  # generated revisions, one per schema change
                continue
            source = path.read_text()
            lines = source.count("\n") + (not source.endswith("\n") and bool(source))
            if lines > MAX_MODULE_LINES:
                found.append(f"{rel}: {lines} lines (at most {MAX_MODULE_LINES})")
            for node in ast.walk(ast.parse(source, str(rel))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                    length = node.end_lineno - first + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append(f"{rel}:{node.lineno}: {node.name}() is {length} lines "
                                     f"(at most {MAX_FUNCTION_LINES})")
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    found = breaches(root)
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} breach(es) of the house's size rules", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
