{#-
    `dbt run-operation drop_ci_schema --args '{schema: PR_42}'`: removes a slim-CI schema
    (and everything in it) from the target database. Refuses the shared schemas so a
    typo cannot drop production.
-#}
{% macro drop_ci_schema(schema) -%}
    {%- set protected = ['PUBLIC', 'STAGING', 'ANALYTICS', 'REFERENCE', 'INFORMATION_SCHEMA'] -%}
    {%- if schema | upper in protected -%}
        {{ exceptions.raise_compiler_error('refusing to drop shared schema ' ~ schema) }}
    {%- endif -%}
    {%- set relation = api.Relation.create(database=target.database, schema=schema | upper) -%}
    {%- do adapter.drop_schema(relation) -%}
    {{ log('dropped schema ' ~ relation, info=true) }}
{%- endmacro %}
