"""The README's commands are what CI and newcomers run: keep them true."""

import re

from helpers import REPO


def readme_commands() -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", (REPO / "README.md").read_text(), re.S)


def test_ci_runs_the_readme_test_command():
    ci_command = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command in [c.strip() for c in readme_commands()], "README's test command and .ci/run differ"


def test_readme_job_scripts_and_configs_exist():
    text = (REPO / "README.md").read_text()
    for path in set(re.findall(r"\b((?:cluster_jobs|benchmarks|ray_configs|k8s)/[\w./-]+\.(?:py|yaml|json))", text)):
        assert (REPO / path).exists(), f"README names {path}, which does not exist"
