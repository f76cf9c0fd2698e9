{#-
    Referential integrity: every non-null `column_name` exists in `to`.`field`.
    (The built-in `relationships` without its YAML ceremony, plus an optional `where`
    on the child side, e.g. to skip symbols that are allowed to be unknown.)
-#}
{% test has_parent(model, column_name, to, field, child_where=none) %}

with child as (
    select {{ column_name }} as child_key
    from {{ model }}
    where
        {{ column_name }} is not null
        {%- if child_where %}
            and ({{ child_where }})
        {%- endif %}
),

parent as (
    select {{ field }} as parent_key
    from {{ to }}
)

select child.child_key
from child
left join parent
    on child.child_key = parent.parent_key
where parent.parent_key is null

{% endtest %}
