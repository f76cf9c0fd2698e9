{#
    At least `at_least` (0..1) of the rows have a value: for indicators that are null by
    design during warm-up (SMA50, RSI-14) but must not be null everywhere.
#}
{% test not_null_proportion(model, column_name, at_least) %}
    with counts as (
        select
            count({{ column_name }}) as n_not_null,
            count(*) as n_rows
        from {{ model }}
    )

    select
        n_not_null,
        n_rows
    from counts
    where n_rows > 0 and n_not_null < {{ at_least }} * n_rows
{% endtest %}
