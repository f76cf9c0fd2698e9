{#-
    Partial deployments (batch-only or realtime-only warehouses): renders the source
    relation when the loader has created it, otherwise a zero-row subquery with the
    source's documented columns (from _sources.yml; the staging model's casts type them),
    so the staging view, everything downstream and their tests build green on an empty
    input instead of failing the whole `dbt build` on "table does not exist". The next build
    after the first load reads the real table (staging is a view, rebuilt on every run).
    Only staging calls this. At parse time (and for sqlfluff) it renders the plain source.
-#}
{% macro source_or_empty(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set existing = none -%}
    {%- if execute -%}
        {%- set existing = adapter.get_relation(
            database=relation.database,
            schema=relation.schema,
            identifier=relation.identifier
        ) -%}
    {%- endif -%}
    {%- if not execute or existing is not none -%}
        {{ relation }}
    {%- else -%}
        {%- set unique_id = 'source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name -%}
        {%- set columns = graph.sources[unique_id].columns.keys() | list -%}
        {%- if not columns -%}
            {%- do exceptions.raise_compiler_error(
                unique_id ~ ' lists no columns in _sources.yml:'
                ~ ' source_or_empty needs them for its empty stand-in'
            ) -%}
        {%- endif -%}
        {%- set message = relation ~ ' does not exist yet: ' ~ this ~ ' is empty until loaded' -%}
        {%- do log(message, info=true) -%}
        {%- set nulls = [] -%}
        {%- for column in columns -%}
            {%- do nulls.append('null as ' ~ column) -%}
        {%- endfor -%}
        (select {{ nulls | join(', ') }} from (select 1 as one) as no_rows where 1 = 0)
    {%- endif -%}
{%- endmacro %}
