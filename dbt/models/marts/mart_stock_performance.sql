{{ config(cluster_by=['trade_date', 'symbol']) }}

{#-
    Signals (null inputs give INSUFFICIENT_DATA / NONE, never a guess):
    Prices are compared with a tolerance of var('price_tolerance') USD (far below a cent,
    far above float rounding), so "equal" does not depend on summation order.
    * ma_cross_signal: GOLDEN_CROSS on the day SMA20 moves above SMA50 (yesterday <=,
      today >), DEATH_CROSS on the day it moves below (yesterday >=, today <), else NONE.
    * ma_trend: BULLISH when SMA20 > SMA50, BEARISH when <, NEUTRAL when equal.
    * price_vs_sma_20d / _50d: ABOVE, BELOW or AT the moving average.
    * rsi_signal: OVERBOUGHT when RSI >= 70, OVERSOLD when <= 30, else NEUTRAL.
-#}
with daily_returns as (
    select * from {{ ref('int_daily_returns') }}
),

rolling_metrics as (
    select * from {{ ref('int_rolling_metrics') }}
),

tickers as (
    select * from {{ ref('sp500_tickers') }}
),

joined as (
    select
        daily_returns.symbol,
        daily_returns.trade_date,
        tickers.company_name,
        coalesce(tickers.sector, 'Unknown') as sector,
        daily_returns.trading_day_number,
        daily_returns.open_price,
        daily_returns.high_price,
        daily_returns.low_price,
        daily_returns.close_price,
        daily_returns.volume,
        daily_returns.prev_close_price,
        daily_returns.price_change,
        daily_returns.daily_return_pct,
        daily_returns.overnight_gap_pct,
        daily_returns.intraday_range_pct,
        rolling_metrics.sma_5d,
        rolling_metrics.sma_10d,
        rolling_metrics.sma_20d,
        rolling_metrics.sma_50d,
        {%- for day in ['', 'prev_'] %}
            {%- set sma = 'rolling_metrics.' ~ day %}
            {%- set gap = sma ~ 'sma_20d - ' ~ sma ~ 'sma_50d' %}
            case
                when abs({{ gap }}) <= {{ var('price_tolerance') }} then 0
                else sign({{ gap }})
            end as {{ day }}sma_20_50_sign,
        {%- endfor %}
        rolling_metrics.avg_volume_20d,
        rolling_metrics.volume_vs_avg_20d,
        rolling_metrics.volatility_20d_pct,
        rolling_metrics.annualised_volatility_pct,
        rolling_metrics.rsi_14,
        rolling_metrics.high_52w,
        rolling_metrics.low_52w,
        rolling_metrics.pct_of_52w_range,
        daily_returns.loaded_at
    from daily_returns
    inner join rolling_metrics
        on
            daily_returns.symbol = rolling_metrics.symbol
            and daily_returns.trade_date = rolling_metrics.trade_date
    left join tickers
        on daily_returns.symbol = tickers.symbol
),

signals as (
    select
        symbol,
        trade_date,
        company_name,
        sector,
        trading_day_number,
        open_price,
        high_price,
        low_price,
        close_price,
        volume,
        prev_close_price,
        price_change,
        daily_return_pct,
        overnight_gap_pct,
        intraday_range_pct,
        sma_5d,
        sma_10d,
        sma_20d,
        sma_50d,
        case
            when sma_20_50_sign = 1 and prev_sma_20_50_sign <= 0 then 'GOLDEN_CROSS'
            when sma_20_50_sign = -1 and prev_sma_20_50_sign >= 0 then 'DEATH_CROSS'
            else 'NONE'
        end as ma_cross_signal,
        case
            when sma_20_50_sign is null then 'INSUFFICIENT_DATA'
            when sma_20_50_sign = 1 then 'BULLISH'
            when sma_20_50_sign = -1 then 'BEARISH'
            else 'NEUTRAL'
        end as ma_trend,
        {%- for n in [20, 50] %}
            case
                when sma_{{ n }}d is null then 'INSUFFICIENT_DATA'
                when abs(close_price - sma_{{ n }}d) <= {{ var('price_tolerance') }} then 'AT'
                when close_price > sma_{{ n }}d then 'ABOVE'
                else 'BELOW'
            end as price_vs_sma_{{ n }}d,
        {%- endfor %}
        avg_volume_20d,
        volume_vs_avg_20d,
        coalesce(volume_vs_avg_20d >= 2, false) as is_high_volume_day,
        volatility_20d_pct,
        annualised_volatility_pct,
        rsi_14,
        case
            when rsi_14 is null then 'INSUFFICIENT_DATA'
            when rsi_14 >= 70 then 'OVERBOUGHT'
            when rsi_14 <= 30 then 'OVERSOLD'
            else 'NEUTRAL'
        end as rsi_signal,
        high_52w,
        low_52w,
        pct_of_52w_range,
        loaded_at
    from joined
)

select * from signals
