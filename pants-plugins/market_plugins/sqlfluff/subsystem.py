"""The `[sqlfluff]` subsystem: sqlfluff installed from a Python resolve of the repo."""

from __future__ import annotations

from pants.backend.python.subsystems.python_tool_base import PythonToolBase
from pants.backend.python.target_types import ConsoleScript
from pants.option.option_types import ArgsListOption, SkipOption, StrListOption
from pants.util.strutil import softwrap


class Sqlfluff(PythonToolBase):
    options_scope = "sqlfluff"
    name = "sqlfluff"
    help = "The SQL linter and fixer sqlfluff (https://docs.sqlfluff.com)."

    default_main = ConsoleScript("sqlfluff")
    default_version = "sqlfluff>=3.2,<4"
    default_requirements = ["sqlfluff>=3.2,<4"]
    register_interpreter_constraints = True
    # PythonToolBase insists on a built-in lockfile; the repo installs sqlfluff through
    # `install_from_resolve`, so this resource is never read.
    default_lockfile_resource = ("market_plugins.sqlfluff", "sqlfluff.lock")

    skip = SkipOption("lint", "fmt")
    args = ArgsListOption(example="--processes 2")
    include = StrListOption(
        default=["**/*.sql"],
        help="Globs of the files to lint and fix.",
    )
    exclude = StrListOption(
        default=[],
        help="Globs of files to leave alone (compiled output, vendored packages).",
    )
    extra_inputs = StrListOption(
        default=[],
        help=softwrap(
            """
            Globs of files sqlfluff needs besides the linted ones, such as the Jinja macros
            named by `load_macros_from_path` in `.sqlfluff`.
            """
        ),
    )
    # sqlfluff reads `.sqlfluff` / `.sqlfluffignore` from the working directory and from
    # every directory between it and each file; all of them are put in the sandbox.
    config_globs = (".sqlfluff", "**/.sqlfluff", ".sqlfluffignore", "**/.sqlfluffignore")
