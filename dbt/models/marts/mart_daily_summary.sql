{{ config(cluster_by=['trade_date']) }}

{#-
    Breadth counts only symbols with a return that day (a symbol's first bar has none).
    Top gainer / loser: highest / lowest daily_return_pct; ties go to the alphabetically
    first symbol so reruns give the same answer.
-#}
with stock_performance as (
    select * from {{ ref('mart_stock_performance') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by trade_date order by daily_return_pct desc nulls last, symbol
        ) as gainer_rank,
        row_number() over (
            partition by trade_date order by daily_return_pct asc nulls last, symbol
        ) as loser_rank
    from stock_performance
),

daily as (
    select
        trade_date,
        count(*) as symbols_count,
        count(daily_return_pct) as symbols_with_return,
        count_if(daily_return_pct > 0) as advancers,
        count_if(daily_return_pct < 0) as decliners,
        count_if(daily_return_pct = 0) as unchanged,
        avg(daily_return_pct) as avg_return_pct,
        max(iff(gainer_rank = 1 and daily_return_pct is not null, symbol, null))
            as top_gainer_symbol,
        max(iff(gainer_rank = 1, daily_return_pct, null)) as top_gainer_return_pct,
        max(iff(loser_rank = 1 and daily_return_pct is not null, symbol, null))
            as top_loser_symbol,
        max(iff(loser_rank = 1, daily_return_pct, null)) as top_loser_return_pct,
        sum(volume) as total_volume,
        avg(annualised_volatility_pct) as avg_annualised_volatility_pct,
        count_if(ma_cross_signal = 'GOLDEN_CROSS') as golden_cross_count,
        count_if(ma_cross_signal = 'DEATH_CROSS') as death_cross_count,
        count_if(rsi_signal = 'OVERBOUGHT') as overbought_count,
        count_if(rsi_signal = 'OVERSOLD') as oversold_count
    from ranked
    group by trade_date
),

breadth as (
    select
        *,
        {{ safe_divide('advancers', 'decliners') }} as advance_decline_ratio,
        100 * {{ safe_divide('advancers', 'symbols_with_return') }} as pct_advancing
    from daily
)

select * from breadth
