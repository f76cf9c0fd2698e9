""".github/workflows/dbt-slim-ci.yml's own ``run:`` steps, executed against the emulator.

The steps are read from the workflow (and its ``dbt-setup`` action), their ``${{ … }}``
expressions filled the way Actions would for a pull request (secrets and variables of a
CI service user with the role MARKET_CI, its key pair), and run with bash in a checkout
copy: write the key → compile production's manifest (the artifact) → a PR changes models
→ ``Build modified models into PR_<n>`` (state:modified+, deferring to production) →
``Drop PR_<n>``. Only two things differ from a hosted runner: the Snowflake endpoint is
the private fakesnow (``MARKET_SNOWFLAKE__HOST/PORT/PROTOCOL``; the prod target reads
them), and the artifact moves by a copy instead of upload-artifact / ``gh run download``.
``uv run --no-sync <script>`` runs the script's module in this interpreter.

Production is built first by the transformer (as the daily DAG does). Every statement the
CI role sent is then checked against infra/snowflake/roles.sql (issue #16 item 4).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

# Outside Pants (plain pytest, importlib mode) the sibling helper is not on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
from privileges import (
    REPO,
    ROLES_SQL,
    Checker,
    Privilege,
    Statement,
    parse_roles_sql,
    read_log,
    recording_fakesnow,
    write_key_pair,
)

pytestmark = pytest.mark.integration

WORKFLOW = REPO / ".github" / "workflows" / "dbt-slim-ci.yml"
SETUP_ACTION = REPO / ".github" / "actions" / "dbt-setup" / "action.yml"
CI_ROLE = "MARKET_CI"
ADMIN_ROLE = "SYSADMIN"
# The test's own look at the emulator (not part of the run being checked).
OBSERVER = "TEST_OBSERVER"
CI_USER = "MARKET_CI_SVC"
PRODUCTION_SCHEMAS = ("PUBLIC", "STAGING", "REFERENCE", "ANALYTICS")
# Two pull requests, so the deferred reads reach every production layer: the first changes
# both staging models (reads the raw tables of both databases and the prod seed), the
# second two marts (reads STAGING through an ephemeral parent and ANALYTICS).
PULL_REQUESTS = {
    101: ["models/staging/stg_daily_stock_metrics.sql", "models/staging/stg_realtime_stock_analytics.sql"],
    102: ["models/marts/mart_realtime_signals.sql", "models/marts/mart_daily_summary.sql"],
}  # fmt: skip

EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")

UV_SHIM = """#!/bin/sh
# `uv run --no-sync <script> …`: the workspace's console script, in the test's interpreter.
[ "$1" = run ] && [ "$2" = --no-sync ] || { echo "uv shim: only 'uv run --no-sync'" >&2; exit 2; }
shift 2
script=$1
shift
case $script in
  dbt) exec "{python}" -m dbt.cli.main "$@" ;;
  market-dbt) exec "{python}" -m market_dbt.cli "$@" ;;
  *) echo "uv shim: unknown script $script" >&2; exit 127 ;;
esac
"""


def fill(text: str, context: dict[str, str]) -> str:
    """``${{ name }}`` → ``context[name]``; an expression the test does not know fails it."""

    def one(match: re.Match[str]) -> str:
        name = match[1]
        assert name in context, f"workflow expression the test cannot fill: {name}"
        return context[name]

    return EXPRESSION.sub(one, text)


def step(job: dict[str, Any], name_prefix: str) -> dict[str, Any]:
    found = [s for s in job["steps"] if str(s.get("name", "")).startswith(name_prefix)]
    assert (
        len(found) == 1
    ), f"one step named {name_prefix}… in {[s.get('name') for s in job['steps']]}"
    return found[0]


class Workflow:
    """Runs the workflow's steps for one event context in a checkout copy."""

    def __init__(self, workspace: Path, port: int, pem: str, tmp: Path) -> None:
        self.workspace = workspace
        self.doc = yaml.safe_load(WORKFLOW.read_text())
        self.action = yaml.safe_load(SETUP_ACTION.read_text())
        self.secrets = {
            "secrets.SNOWFLAKE_ACCOUNT": "local",
            "secrets.SNOWFLAKE_USER": CI_USER,
            "secrets.SNOWFLAKE_PRIVATE_KEY": pem,
            "secrets.SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "",
            "vars.SNOWFLAKE_ROLE": CI_ROLE,
            "vars.SNOWFLAKE_WAREHOUSE": "MARKET_WH",
            "github.workspace": str(workspace),
            "github.token": "unused-by-the-steps-run-here",
        }
        shim_dir = tmp / "bin"
        shim_dir.mkdir()
        (shim_dir / "uv").write_text(UV_SHIM.replace("{python}", sys.executable))
        (shim_dir / "uv").chmod(0o755)
        # The steps run in the checkout copy, by a bare interpreter: this process's own
        # import path (Pants' sandbox paths are relative to its cwd, and the PEX bootstrap
        # that reads PEX_EXTRA_SYS_PATH does not run for `python -m`) becomes an absolute
        # PYTHONPATH, so the scripts import exactly the modules this test imports.
        paths = {
            "PYTHONPATH": os.pathsep.join(
                os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)
            )
        }
        self.base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MARKET_")},
            **paths,
            "PATH": f"{shim_dir}:{os.environ['PATH']}",
            "MARKET_SNOWFLAKE__HOST": "127.0.0.1",
            "MARKET_SNOWFLAKE__PORT": str(port),
            "MARKET_SNOWFLAKE__PROTOCOL": "http",
        }

    def context(self, pr: int | None) -> dict[str, str]:
        context = dict(self.secrets)
        if pr is not None:
            context["github.event.number"] = str(pr)
        workflow_env = {k: fill(str(v), context) for k, v in self.doc["env"].items()}
        context.update({f"env.{k}": v for k, v in workflow_env.items()})
        return context

    def run(self, job_name: str, name_prefix: str, *, pr: int | None = None,
            replace: tuple[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """One step of ``job_name`` (``replace`` edits its script, for the refusal cases)."""
        job = self.doc["jobs"][job_name]
        chosen = step(job, name_prefix)
        script = chosen["run"] if replace is None else chosen["run"].replace(*replace)
        return self._bash(script, chosen.get("env", {}), self.context(pr))

    def setup(self, job_name: str) -> None:
        """The job's ``dbt-setup`` action: its key-writing step, with the job's inputs."""
        job = self.doc["jobs"][job_name]
        uses = next(s for s in job["steps"] if s.get("uses") == "./.github/actions/dbt-setup")
        context = self.context(None)
        for name, value in uses["with"].items():
            context[f"inputs.{name}"] = fill(str(value), context)
        chosen = step({"steps": self.action["runs"]["steps"]}, "Write the Snowflake key")
        proc = self._bash(chosen["run"], chosen.get("env", {}), context)
        assert proc.returncode == 0, proc.stderr

    def _bash(self, script: str, step_env: dict[str, Any], context: dict[str, str]) -> subprocess.CompletedProcess[str]:  # fmt: skip
        env = dict(self.base_env)
        env.update({k: fill(str(v), context) for k, v in self.doc["env"].items()})
        env.update({k: fill(str(v), context) for k, v in step_env.items()})
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", fill(script, context)],
            cwd=self.workspace, env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip


def schemas(port: int) -> set[str]:
    import snowflake.connector

    with snowflake.connector.connect(
        host="127.0.0.1", port=port, protocol="http", account="local", user=OBSERVER, password="t"
    ) as conn:
        cursor = conn.cursor()
        cursor.execute("select schema_name from STOCKMARKETBATCH.information_schema.schemata")
        rows = cursor.fetchall()
    return {str(r[0]).upper() for r in rows}


def tables_in(port: int, schema: str) -> set[str]:
    import snowflake.connector

    with snowflake.connector.connect(
        host="127.0.0.1", port=port, protocol="http", account="local", user=OBSERVER, password="t"
    ) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "select table_name from STOCKMARKETBATCH.information_schema.tables "
            "where table_schema = %s union all "
            "select table_name from STOCKMARKETBATCH.information_schema.views "
            "where table_schema = %s",
            (schema, schema),
        )
        rows = cursor.fetchall()
    return {str(r[0]).lower() for r in rows}


@pytest.fixture(scope="module")
def slim_ci_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Production built, then the workflow's steps for two pull requests; what happened."""
    home = tmp_path_factory.mktemp("slim-ci")
    with recording_fakesnow(home / "fakesnow") as (port, statement_log):
        workspace = home / "checkout"
        workspace.mkdir()
        shutil.copytree(REPO / "dbt", workspace / "dbt",
                        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))  # fmt: skip
        pem = write_key_pair(home / "ci.p8").read_text()
        flow = Workflow(workspace, port, pem, home)

        # Production, as the daily dbt DAG builds it (the transformer's own identity).
        shutil.copytree(REPO / "dbt", home / "prod-dbt",
                        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))  # fmt: skip
        transformer = {
            "MARKET_DBT__TARGET": "prod",
            "MARKET_SNOWFLAKE__ACCOUNT": "local",
            "MARKET_DBT__SNOWFLAKE_USER": "MARKET_DBT_SVC",
            "MARKET_DBT__SNOWFLAKE_ROLE": "MARKET_TRANSFORMER",
            "MARKET_DBT__SNOWFLAKE_PRIVATE_KEY_PATH": str(write_key_pair(home / "dbt.p8")),
            "MARKET_DBT__PROJECT_DIR": str(home / "prod-dbt"),
        }
        admin = {
            "MARKET_SNOWFLAKE__USER": "MARKET_ADMIN",
            "MARKET_SNOWFLAKE__ROLE": ADMIN_ROLE,
            "MARKET_SNOWFLAKE__PRIVATE_KEY_PATH": str(write_key_pair(home / "admin.p8")),
        }
        init = subprocess.run(  # the raw tables (empty): the staging models read them
            [sys.executable, "-m", "market_loaders.cli", "init"], env={**flow.base_env, **admin},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-2000:]
        prod = subprocess.run(
            [sys.executable, "-m", "market_dbt.cli", "build"], env={**flow.base_env, **transformer},
            cwd=workspace, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert prod.returncode == 0, prod.stdout[-3000:] + prod.stderr[-2000:]

        # push to main: the production-manifest job.
        flow.setup("production-manifest")
        compiled = flow.run("production-manifest", "Compile against production")
        assert compiled.returncode == 0, compiled.stdout[-3000:] + compiled.stderr[-2000:]
        artifact = home / "artifact"
        artifact.mkdir()
        shutil.copy(workspace / "dbt" / "target" / "manifest.json", artifact / "manifest.json")

        outcome: dict[str, Any] = {"port": port, "builds": {}, "after_drop": {}, "refused": {}}
        flow.setup("slim-ci")
        for pr, models in PULL_REQUESTS.items():
            for model in models:
                path = workspace / "dbt" / model
                path.write_text(path.read_text() + f"\n-- PR {pr}: reviewed change\n")
            state = workspace / "prod-state"
            shutil.rmtree(state, ignore_errors=True)
            state.mkdir()
            shutil.copy(artifact / "manifest.json", state / "manifest.json")  # the download
            built = flow.run("slim-ci", "Build modified models", pr=pr)
            assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
            outcome["builds"][pr] = (tables_in(port, f"PR_{pr}"), schemas(port))
            dropped = flow.run("drop-pr-schema", "Drop PR_", pr=pr)
            assert dropped.returncode == 0, dropped.stdout[-3000:] + dropped.stderr[-2000:]
            outcome["after_drop"][pr] = schemas(port)
            for model in models:  # the next PR starts from main again
                shutil.copy(REPO / "dbt" / model, workspace / "dbt" / model)
        for schema in ("ANALYTICS", "STAGING", "REFERENCE", "PUBLIC", "DBT_ALICE", "PR_1X"):
            refused = flow.run(
                "drop-pr-schema",
                "Drop PR_",
                pr=1,
                replace=("PR_${{ github.event.number }}", schema),
            )
            outcome["refused"][schema] = (refused.returncode, refused.stdout + refused.stderr)
        outcome["schemas_at_end"] = schemas(port)
        outcome["statements"] = read_log(statement_log)
        outcome["manifest"] = json.loads((artifact / "manifest.json").read_text())
        yield outcome


def test_pull_request_builds_modified_models_into_its_schema_and_cleanup_drops_it(
    slim_ci_run: dict[str, Any],
) -> None:
    prod_models = {
        n["alias"].lower()
        for n in slim_ci_run["manifest"]["nodes"].values()
        if n["resource_type"] in ("model", "seed") and n["config"]["materialized"] != "ephemeral"
    }
    expected = {
        101: {"stg_daily_stock_metrics", "stg_realtime_stock_analytics", "mart_stock_performance",
              "mart_daily_summary", "mart_realtime_signals"},
        102: {"mart_realtime_signals", "mart_daily_summary"},
    }  # fmt: skip
    for pr, (built, present) in slim_ci_run["builds"].items():
        assert f"PR_{pr}" in present, f"PR_{pr} exists while the pull request is open"
        assert built == expected[pr], f"PR {pr}: state:modified+ only (deferred the rest): {built}"
        assert built < prod_models
        assert f"PR_{pr}" not in slim_ci_run["after_drop"][pr], f"closing PR {pr} drops PR_{pr}"
        assert {"ANALYTICS", "STAGING", "REFERENCE"} <= slim_ci_run["after_drop"][pr]


def test_cleanup_refuses_every_schema_that_is_not_a_pr_schema(slim_ci_run: dict[str, Any]) -> None:
    for schema, (code, output) in slim_ci_run["refused"].items():
        assert (
            code != 0 and "refusing to drop" in output
        ), f"{schema} was not refused: {output[-500:]}"
    assert {"ANALYTICS", "STAGING", "REFERENCE", "PUBLIC"} <= slim_ci_run["schemas_at_end"]
    assert not [
        s for s in slim_ci_run["schemas_at_end"] if s.startswith("PR_")
    ], "no PR schema left"


def test_the_ci_role_sends_only_statements_roles_sql_allows_and_uses_every_grant(
    slim_ci_run: dict[str, Any],
) -> None:
    checker = Checker.of(parse_roles_sql(ROLES_SQL.read_text()))
    statements = [s for s in slim_ci_run["statements"] if s.user != OBSERVER]
    setup = frozenset({ADMIN_ROLE, "MARKET_TRANSFORMER"})  # init and the production build
    denied, issuers = checker.check(statements, skip_roles=setup)
    assert set(issuers) == {CI_ROLE, *setup}, f"statements per role: {issuers}"
    assert not denied, "the CI role lacks privileges:\n" + "\n".join(denied[:30])
    unused = checker.unused({CI_ROLE})
    assert not unused, "roles.sql grants the CI role privileges no step used:\n" + "\n".join(unused)


def test_the_ci_role_cannot_write_production_schemas() -> None:
    """Finding (#16): the slim-CI role owned the production ANALYTICS schema."""
    model = parse_roles_sql(ROLES_SQL.read_text())
    writes = [
        str(p)
        for p in model.grants.get(CI_ROLE, set())
        if p.privilege not in ("USAGE", "SELECT")
        and not (p.privilege == "CREATE SCHEMA" and p.kind == "DATABASE")
    ]
    assert writes == [], f"{CI_ROLE} may write: {writes}"
    owned = [name for (_, name), role in model.owners.items() if role == CI_ROLE]
    assert owned == [], f"{CI_ROLE} owns {owned}"
    for sql in (
        "create or replace transient table STOCKMARKETBATCH.ANALYTICS.mart_daily_summary as (select 1 as x)",
        "create or replace view STOCKMARKETBATCH.STAGING.stg_x as (select 1 as x)",
        "insert into STOCKMARKETBATCH.ANALYTICS.mart_daily_summary (x) values (1)",
        "drop table if exists STOCKMARKETBATCH.ANALYTICS.mart_daily_summary",
    ):
        checker = Checker.of(model)  # production as dbt built it: the transformer owns it
        checker.owners["STOCKMARKETBATCH.ANALYTICS.MART_DAILY_SUMMARY"] = "MARKET_TRANSFORMER"
        statement = Statement(CI_USER, CI_ROLE, "STOCKMARKETBATCH", "PR_1", sql, True)
        needs = checker.needs(statement)
        assert not all(checker.allowed(CI_ROLE, n) for n in needs), f"{CI_ROLE} may run: {sql}"
    assert Privilege("CREATE SCHEMA", "DATABASE", "STOCKMARKETBATCH") in model.grants[CI_ROLE]
