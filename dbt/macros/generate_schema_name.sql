{#-
    Where each node is built (database = the profile's, STOCKMARKETBATCH by default):
      * slim CI (`--vars '{ci_schema: PR_42}'`): every node goes to that one schema, so a
        pull request never touches shared schemas and is cleaned up with one DROP SCHEMA;
      * targets in var('as_is_schema_targets') (prod, and the private local emulator): the
        custom schema as-is -> STAGING, ANALYTICS, REFERENCE;
      * any other target (dev): prefixed with the target schema -> DBT_ALICE_ANALYTICS, so
        developers sharing one account do not overwrite each other.
    Names are upper-cased: unquoted Snowflake identifiers are upper case anyway.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set ci_schema = var('ci_schema', none) -%}
    {%- if ci_schema -%}
        {{ ci_schema | trim | upper }}
    {%- elif custom_schema_name is none -%}
        {{ target.schema | trim | upper }}
    {%- elif target.name in var('as_is_schema_targets', ['prod']) -%}
        {{ custom_schema_name | trim | upper }}
    {%- else -%}
        {{ target.schema | trim | upper }}_{{ custom_schema_name | trim | upper }}
    {%- endif -%}
{%- endmacro %}
