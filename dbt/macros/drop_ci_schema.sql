{#-
    `dbt run-operation drop_ci_schema --args '{schema: PR_42}'`: removes a slim-CI schema
    (and everything in it) from the target database. Only PR_<number> schemas: anything
    else (ANALYTICS, STAGING, a developer's schema, a typo) is refused, so the cleanup can
    never drop production.
-#}
{% macro drop_ci_schema(schema) -%}
    {%- if not modules.re.fullmatch('PR_[0-9]+', schema | string | upper) -%}
        {%- set why = ': only PR_<number> schemas are slim-CI schemas' -%}
        {{ exceptions.raise_compiler_error('refusing to drop ' ~ schema ~ why) }}
    {%- endif -%}
    {%- set relation = api.Relation.create(database=target.database, schema=schema | upper) -%}
    {%- do adapter.drop_schema(relation) -%}
    {{ log('dropped schema ' ~ relation, info=true) }}
{%- endmacro %}
