with realtime_stock_analytics as (
    -- An absent source (a partial deployment) reads as zero rows: macros/source_or_empty.sql.
    select * from {{ source_or_empty('stream', 'realtime_stock_analytics') }}
),

renamed as (
    select
        upper(trim(symbol))::varchar as symbol,
        window_start::timestamp_ntz as window_start_at,
        window_end::timestamp_ntz as window_end_at,
        window_open::float as window_open_price,
        window_high::float as window_high_price,
        window_low::float as window_low_price,
        window_close::float as window_close_price,
        ma_15m::float as ma_15m,
        ma_1h::float as ma_1h,
        volatility_15m::float as volatility_15m,
        volume_sum_15m::number(38, 0) as volume_15m,
        tick_count::number(38, 0) as tick_count,
        load_timestamp::timestamp_ntz as loaded_at
    from realtime_stock_analytics
    where
        symbol is not null
        and window_start is not null
)

select * from renamed
