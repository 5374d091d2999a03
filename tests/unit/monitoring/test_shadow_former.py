"""``monitoring.shadow_former``: after a version is replaced as champion, ``podium score``
plans it as a shadow (``former``) beside the policy's shadow aliases, logged with role
shadow like them; once, even when an alias names it too."""

from types import SimpleNamespace

from podium_policy.policy import parse_policy
from tests.unit.monitoring.logdata import promoted
from webhook_server.monitoring.shadow import FORMER, former_champion, plan_shadows


class Registry:
    """The two registry calls a plan makes: an alias's version, a version's run."""

    def __init__(self, aliases):
        self.aliases = aliases
        self.client = SimpleNamespace(
            get_model_version=lambda model, version: SimpleNamespace(run_id=f"run-{version}"))

    def alias_version(self, model, alias):
        return self.aliases.get(alias)


def plans(tmp_path, aliases, former, shadow_aliases=("challenger",)):
    mp = parse_policy({"default": {"shadow": {"aliases": list(shadow_aliases)},
                                   "monitoring": {"shadow_former": True}}}).default
    loaded = []
    out = plan_shadows(mp, "churn", "3", str(tmp_path), Registry(aliases),
                       lambda uri: loaded.append(uri) or (lambda frame: None), former=former)
    return out, loaded


def test_the_former_champion_is_the_version_the_ledger_replaced(svc):
    mp = parse_policy({}).default
    assert former_champion(svc.store, "churn", mp, "3") is None  # no ledger yet
    promoted(svc.store, "2", auc=0.84)
    assert former_champion(svc.store, "churn", mp, "2") is None  # the first champion
    promoted(svc.store, "3", auc=0.84)
    assert former_champion(svc.store, "churn", mp, "3") == "2"


def test_the_former_champion_is_shadowed_beside_the_aliases(tmp_path):
    out, loaded = plans(tmp_path, {"challenger": "4"}, former="2")
    assert [(p.alias, p.version, p.skipped) for p in out] == [
        ("challenger", "4", None), (FORMER, "2", None)]
    assert loaded == ["models:/churn/4", "models:/churn/2"]
    former = out[1].shadow
    assert (former.log.role, former.log.version, former.log.run_id) == ("shadow", "2", "run-2")


def test_a_former_champion_an_alias_already_names_is_scored_once(tmp_path):
    out, loaded = plans(tmp_path, {"challenger": "2"}, former="2")
    assert [(p.alias, p.version) for p in out] == [("challenger", "2"), (FORMER, "2")]
    assert out[1].skipped == ("the former champion, version 2, is already shadowed under "
                              "another alias")
    assert loaded == ["models:/churn/2"]


def test_without_a_former_champion_only_the_aliases_are_planned(tmp_path):
    out, _ = plans(tmp_path, {}, former=None, shadow_aliases=())
    assert out == []
