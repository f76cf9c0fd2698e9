{#-
    Emulator-only shim (target account "local" = fakesnow on duckdb): duckdb rejects
    database-qualified TEMPORARY tables, which dbt unit tests create to read column types.
    There a regular table is created instead (in a schema that may not exist yet, since
    ephemeral models under test own none); real Snowflake keeps the adapter's macro.
-#}
{% macro snowflake__create_table_temporary_sql(relation, compiled_code) -%}
    {%- if target.account == 'local' -%}
        {%- do adapter.create_schema(relation) -%}
        create or replace table {{ relation }} as (
            {{ compiled_code }}
        )
    {%- else -%}
        {{ dbt_snowflake.snowflake__create_table_temporary_sql(relation, compiled_code) }}
    {%- endif -%}
{%- endmacro %}
