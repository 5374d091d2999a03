"""`make lint`'s size rules (ci/house_rules.py) name each module over 400 lines and each
function over 80, and leave migrations and tests alone."""

from ci.house_rules import breaches, main


def _module(root, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_long_module_and_a_long_function_are_named(tmp_path):
    _module(tmp_path, "webhook_server/fine.py", "def f():\n    return 1\n")
    _module(tmp_path, "training/long.py", "x = 1\n" * 401)
    body = "".join(f"    a{i} = {i}\n" for i in range(80))
    _module(tmp_path, "model_tests/big.py", f"@decorated\ndef judge():\n{body}")
    assert breaches(tmp_path) == [
        "training/long.py: 401 lines (at most 400)",
        "model_tests/big.py:2: judge() is 82 lines (at most 80)",
    ]
    assert main([str(tmp_path)]) == 1


def test_exactly_at_the_limits_and_outside_the_product_is_fine(tmp_path):
    _module(tmp_path, "podium_policy/edge.py", "x = 1\n" * 400)
    body = "".join(f"    a{i} = {i}\n" for i in range(79))
    _module(tmp_path, "webhook_server/edge.py", f"def f():\n{body}")
    _module(tmp_path, "webhook_server/store/migrations/versions/0001.py", "x = 1\n" * 900)
    _module(tmp_path, "tests/test_long.py", "x = 1\n" * 900)
    assert breaches(tmp_path) == []
    assert main([str(tmp_path)]) == 0
