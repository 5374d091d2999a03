"""The release pipeline's script against a real MLflow server and `podium serve`: it trains,
tags the version with the pipeline and merge request, runs the model checks with JUnit
output and requests Production; Podium decides and answers on the merge request (a fake
GitLab reached through python-gitlab)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.podium_runs import api
from tests.support.waiting import wait_for
from webhook_server.dev.fakes.gitlab import FakeGitLab
from webhook_server.dev.processes import bin_path

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


@pytest.mark.timeout(600)  # a whole story of process starts: 3-4.5 min beside 3 workers
def test_release_sh_trains_requests_production_and_the_decision_lands_on_the_mr(
        podium, podium_env, mlflow_client, mlflow_server, tmp_path):
    with FakeGitLab(token="glpat-e2e", project_id="42", merge_requests=(7,)) as gitlab:
        server = podium(GITLAB_URL=gitlab.url, GITLAB_TOKEN="glpat-e2e", GITLAB_PROJECT_ID="42")
        env = {**{k: v for k, v in os.environ.items()
                  if not k.startswith(("PODIUM_", "MLFLOW_", "GITLAB_", "CI_"))},
               **podium_env}
        hook = subprocess.run([bin_path("podium"), "webhook", "register", "--url",
                               f"{server.url}/webhooks/mlflow"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert hook.returncode == 0, hook.stderr
        release_env = {**env, "PYTHON": sys.executable, "REPORTS": str(tmp_path / "reports"),
                       "PODIUM_MODEL": "churn-rel", "PODIUM_SYNTHETIC_ROWS": "5000",
                       "PODIUM_TRIALS": "2", "CI_PROJECT_ID": "42",
                       "CI_OPEN_MERGE_REQUESTS": "group/churn!7,group/churn!9",
                       "CI_PIPELINE_ID": "1001", "CI_COMMIT_SHA": "0123abcd" * 5}
        release = subprocess.run(["bash", str(ROOT / "ci/release.sh")], env=release_env,
                                 capture_output=True, text=True, timeout=600)
        assert release.returncode == 0, release.stdout[-3000:] + release.stderr[-3000:]
        assert "requested: tag transition_request=Production on v1" in release.stdout
        junit = (tmp_path / "reports/model-checks.xml").read_text()
        assert 'failures="0"' in junit and 'tests="22"' in junit
        tags = mlflow_client.get_model_version("churn-rel", "1").tags
        assert {k: tags[k] for k in ("gitlab.project_id", "gitlab.mr_iid",
                                     "gitlab.pipeline_id", "gitlab.commit_sha")} == {
            "gitlab.project_id": "42", "gitlab.mr_iid": "7", "gitlab.pipeline_id": "1001",
            "gitlab.commit_sha": "0123abcd" * 5}
        (req,) = wait_for(lambda: api(server, "/requests?model=churn-rel")["requests"],
                          what="the request")
        wait_for(lambda: api(server, f"/requests/{req['id']}")["state"] == "promoted",
                 timeout=180, what="the first champion")
        (note,) = wait_for(lambda: gitlab.notes[7], timeout=30, what="the note on !7")
        assert "churn-rel v1 → Production: **promoted**" in note["body"]
        assert "| checks | 22/22 passed |" in note["body"]
        assert gitlab.notes.get(9) is None
