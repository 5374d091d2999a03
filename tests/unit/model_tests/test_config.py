"""What the checks are told about one model: the policy's typed sections, read by
attribute (moved here from tests/unit/podium_policy: they test model_tests.config)."""

from model_tests.config import from_policy, read_policy
from model_tests.sandbox import SandboxPool
from podium_policy.policy import Business, Checks, SandboxLimits, load_policy
from podium_policy.policy import Comparison as Rule


def test_the_checks_reach_model_tests_as_the_policys_typed_sections(tmp_path):
    (tmp_path / "h.csv").write_text("Churn\nNo\n")
    (tmp_path / "p.yaml").write_text("default:\n  holdout: h.csv\n"
                                     "  aliases: {champion: prod}\n"
                                     "  checks: {roc_auc: 0.8, slice_columns: [Contract]}\n")
    judge = read_policy(str(tmp_path / "p.yaml"), "churn")
    t = judge.thresholds
    assert isinstance(t, Checks) and t.roc_auc == 0.8 and t.slice_columns == ("Contract",)
    assert judge.holdout == str(tmp_path / "h.csv") and judge.champion_alias == "prod"
    assert isinstance(judge.comparison, Rule) and judge.comparison.metric == "roc_auc"
    assert isinstance(judge.business, Business)
    assert read_policy(None, "churn").thresholds.roc_auc == 0.75


def test_sandbox_limits_reach_the_judge_over_the_settings_and_per_model(tmp_path):
    path = tmp_path / "podium.yaml"
    path.write_text("default:\n  sandbox_limits: {pids: 128}\nmodels:\n  big:\n"
                    "    sandbox_limits: {memory_mb: 8192, cpu_shares: 256}\n"
                    "  anywhere:\n    sandbox_limits: {accept_per_process: true}\n")
    policy = load_policy(path)
    big = from_policy(policy.for_model("big"))
    assert big.sandbox_limits == SandboxLimits(memory_mb=8192, pids=128, cpu_shares=256)
    assert big.sandbox_limits.accept_per_process is False
    other = from_policy(policy.for_model("other"))
    assert other.sandbox_limits == SandboxLimits(pids=128)  # the rest: PODIUM_SANDBOX_*
    assert from_policy(policy.for_model("anywhere")).sandbox_limits.accept_per_process
    assert from_policy(load_policy(None).for_model("x")).sandbox_limits == SandboxLimits()


def test_a_models_sandbox_limits_go_over_the_pools_where_set(tmp_path):
    from model_tests.sandbox import Cgroups, Isolation, Limits

    pool = SandboxPool(Isolation("process", "test"), Limits(memory_mb=4096, pids=256,
                                                           cpu_shares=512),
                       spares=0, cgroups=Cgroups(None, "test: no cgroup"))
    try:
        assert pool.cgroup_limits(None) is None
        assert pool.cgroup_limits(SandboxLimits()) is None
        limits = pool.cgroup_limits(SandboxLimits(pids=64))
        assert (limits.memory_mb, limits.pids, limits.cpu_shares) == (4096, 64, 512)
    finally:
        pool.close()
