"""BUILD-file macros, loaded into every BUILD file by `[GLOBAL].build_file_prelude_globs`.

Pants executes this file before each BUILD file: the functions below become BUILD symbols,
and the target types they call (`python_distribution`, `resource`, …) are the BUILD file's
own. It is not imported by Python code (so the names Pants provides are unknown to linters).
"""

# ruff: noqa: F821  (python_distribution, python_artifact and resource are Pants BUILD symbols)


def workspace_distribution(*, distribution, packages):
    """The release artifacts (sdist + wheel) of one workspace package: target `:dist`.

    `distribution` is the distribution name, which must equal `project.name` in the
    package's pyproject.toml; `packages` are the import packages under `src/` that the wheel
    holds (pyproject's `[tool.hatch.build.targets.wheel].packages`). The build runs through
    pyproject.toml's own PEP 517 backend (hatchling, `generate_setup=False`), which also
    gives name and version, so the version lives in pyproject.toml only. The tag
    `<folder>-v<version>` publishes them (.github/workflows/release.yml);
    `./pants package packages/<folder>:dist` builds them. tools/release checks every
    package's call against its pyproject.toml.
    """
    resource(name="pyproject", source="pyproject.toml")
    python_distribution(
        name="dist",
        dependencies=[":pyproject", *(f"./src/{package}" for package in packages)],
        provides=python_artifact(name=distribution),
        generate_setup=False,
    )
