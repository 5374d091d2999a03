"""Evaluate GitLab CI `rules:if` expressions (the subset .gitlab-ci.yml uses).

gitlab-ci-local does not apply `workflow:rules`, so the tests evaluate them here:
`$VAR`, `"string"`, `/regex/`, `==`, `!=`, `=~`, `!~`, `&&`, `||` and parentheses, with
GitLab's precedence (`&&` binds tighter than `||`) and unset variables as null.
"""

from __future__ import annotations

import re

TOKEN = re.compile(r'\s*(?:(\$\w+)|"((?:[^"\\]|\\.)*)"|/((?:[^/\\]|\\.)*)/'
                   r'|(==|!=|=~|!~|&&|\|\||\(|\)))')


def tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot parse {expr[pos:]!r}")
        var, string, regex, op = m.groups()
        out.append(("var", var[1:]) if var else ("str", string) if string is not None
                   else ("re", regex) if regex is not None else ("op", op))
        pos = m.end()
    return out


def evaluate(expr: str, env: dict[str, str]) -> bool:
    toks = tokens(expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else (None, None)

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def value(tok):
        kind, text = tok
        return env.get(text) or None if kind == "var" else text

    def atom():
        kind, text = take()
        if (kind, text) == ("op", "("):
            result = disjunction()
            assert take() == ("op", ")")
            return result
        left = (kind, text)
        if peek()[0] == "op" and peek()[1] in ("==", "!=", "=~", "!~"):
            _, op = take()
            right = take()
            if op in ("=~", "!~"):
                lv = value(left)
                matched = lv is not None and re.search(right[1].replace("\\/", "/"), lv)
                return bool(matched) == (op == "=~")
            equal = value(left) == value(right)
            return equal == (op == "==")
        return bool(value(left))

    def conjunction():
        result = atom()
        while peek() == ("op", "&&"):
            take()
            result = atom() and result
        return result

    def disjunction():
        result = conjunction()
        while peek() == ("op", "||"):
            take()
            result = conjunction() or result
        return result

    result = disjunction()
    if pos != len(toks):
        raise ValueError(f"trailing tokens in {expr!r}")
    return result


def pipeline_runs(rules: list[dict], env: dict[str, str]) -> bool:
    """The first matching rule decides; `when: never` means no pipeline."""
    for rule in rules:
        if "if" not in rule or evaluate(rule["if"], env):
            return rule.get("when", "always") != "never"
    return False
