"""Pure DataFrame steps: each module exposes one public ``transform(df) -> df``.

Steps read no files and start no queries, so batch jobs, streaming jobs and unit tests
compose the same code.
"""
