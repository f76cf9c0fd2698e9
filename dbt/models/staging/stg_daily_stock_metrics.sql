with daily_stock_metrics as (
    -- An absent source (a partial deployment) reads as zero rows: macros/source_or_empty.sql.
    select * from {{ source_or_empty('batch', 'daily_stock_metrics') }}
),

renamed as (
    select
        upper(trim(symbol))::varchar as symbol,
        date::date as trade_date,
        daily_open::float as open_price,
        daily_high::float as high_price,
        daily_low::float as low_price,
        daily_close::float as close_price,
        daily_volume::number(38, 0) as volume,
        source::varchar as data_source,
        batch_load_timestamp::timestamp_ntz as loaded_at
    from daily_stock_metrics
    -- A bar without a key or a positive close cannot be priced; drop it here once.
    where
        symbol is not null
        and date is not null
        and daily_close > 0
)

select * from renamed
