"""No credentials in the repository, and local defaults bind to loopback only.

Scans every text file the `:repo_text` target brings into the sandbox (the tracked sources,
configs, docs and workflows) for private keys, cloud keys and hard-coded passwords.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    # A quoted literal assigned to a password-ish name: `password = "hunter22"`.
    "hard-coded password": re.compile(
        r"(?i)(?:password|passwd|secret_access_key|secret_key|api_key)[\"']?\s*[:=]\s*[\"'](?P<value>[^\"'\s]{6,})[\"']"
    ),
    # env-file style: `MINIO_ROOT_PASSWORD=hunter22`.
    "password in env file": re.compile(
        r"(?im)^\s*(?:export\s+)?[A-Z0-9_]*(?:PASSWORD|SECRET_ACCESS_KEY|SECRET_KEY|API_KEY)\s*=\s*(?P<value>[^\s$\"'{,()]{6,})\s*$"
    ),
}
# Values that are references or placeholders, not secrets.
PLACEHOLDER = re.compile(
    r"""(?ix)^(?:\$|\{|env_var|os\.environ|settings\.|sf\.|s3\.|k\.|self\.|none|null|changeme|
    change-me|replace|example|placeholder|your[_-]|<|\*+|secretstr|getenv|kw\[|conf\[|get_secret_value|
    private_key|password\)|secrets\.|local$)"""
)
SKIP_SUFFIXES = {".lock", ".png", ".parquet", ".pex", ".whl"}
# Untracked, machine-local output (relevant when run by plain pytest in a checkout).
SKIP_DIRS = {
    ".git",
    ".venv",
    ".local",
    ".pants.d",
    "__pycache__",
    "target",
    "logs",
    "report",
    "results",
}


def _text_files() -> list[Path]:
    files = [
        p
        for p in ROOT.rglob("*")
        if p.is_file()
        and p.suffix not in SKIP_SUFFIXES
        and not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)
        and p.name != Path(__file__).name
    ]
    assert len(files) > 50, f"expected the repository's files in {ROOT}, found {len(files)}"
    return files


def test_no_credentials_in_tracked_files() -> None:
    findings = []
    for path in _text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for what, pattern in PATTERNS.items():
            for match in pattern.finditer(text):
                value = match.groupdict().get("value")
                if value is not None and PLACEHOLDER.match(value):
                    continue
                line = text.count("\n", 0, match.start()) + 1
                findings.append(f"{path.relative_to(ROOT)}:{line}: {what}: {match.group(0)[:60]}")
    assert not findings, "possible credentials committed:\n" + "\n".join(findings)


def test_scanner_catches_planted_secrets() -> None:
    planted = (
        'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\nAKIAIOSFODNN7EXAMPLE\n'
    )
    hits = [what for what, pattern in PATTERNS.items() if pattern.search(planted)]
    assert hits == ["AWS access key id", "hard-coded password"]


def test_local_defaults_bind_to_loopback() -> None:
    from market_common.settings import MarketSettings

    s = MarketSettings()
    hosts = [
        s.stack.host,
        s.kafka.bootstrap_servers.split(":")[0],
        (s.s3.endpoint_url or "").split("//")[1].split(":")[0],
        s.snowflake.host,
    ]
    assert hosts == ["127.0.0.1"] * 4, hosts
