"""market_dbt: run the platform's dbt project (build, docs export, slim CI)."""
