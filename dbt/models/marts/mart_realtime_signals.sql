{{ config(cluster_by=['to_date(window_start_at)', 'symbol']) }}

{#-
    signal_summary is built only from labels and fixed-format values so it is identical on
    every rerun, e.g. "AAPL 2024-05-01 14:15 UTC | close 187.12 | momentum BULLISH |
    volatility ELEVATED | volume spike | ALERT".
-#}
with enriched as (
    select * from {{ ref('int_realtime_enriched') }}
),

tickers as (
    select * from {{ ref('sp500_tickers') }}
),

signals as (
    select
        enriched.symbol,
        enriched.window_start_at,
        enriched.window_end_at,
        coalesce(tickers.sector, 'Unknown') as sector,
        enriched.window_open_price,
        enriched.window_high_price,
        enriched.window_low_price,
        enriched.window_close_price,
        enriched.prev_window_close_price,
        enriched.price_delta,
        enriched.price_delta_pct,
        enriched.ma_15m,
        enriched.ma_1h,
        enriched.ma_15m_delta,
        enriched.ma_spread,
        enriched.ma_spread_pct,
        enriched.momentum_signal,
        enriched.volatility_15m,
        enriched.volatility_15m_pct,
        enriched.volatility_regime,
        enriched.volume_15m,
        enriched.baseline_volume_15m,
        enriched.volume_vs_baseline,
        enriched.is_volume_spike,
        enriched.tick_count,
        enriched.alert_count,
        enriched.is_multi_signal_alert,
        enriched.symbol
        -- left(..., 16) of the full format: fakesnow ignores to_varchar formats on
        -- timestamp_ntz, and the prefix is the same string on Snowflake.
        || ' ' || left(to_varchar(enriched.window_start_at, 'YYYY-MM-DD HH24:MI:SS'), 16) || ' UTC'
        || ' | close ' || coalesce(
            to_varchar(enriched.window_close_price::number(18, 2)), 'n/a'
        )
        || ' | momentum ' || enriched.momentum_signal
        || ' | volatility ' || enriched.volatility_regime
        || iff(enriched.is_volume_spike, ' | volume spike', '')
        || iff(enriched.is_multi_signal_alert, ' | ALERT', '') as signal_summary,
        enriched.loaded_at
    from enriched
    left join tickers
        on enriched.symbol = tickers.symbol
)

select * from signals
