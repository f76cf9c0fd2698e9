-- Least-privilege roles for the market-data platform on Snowflake.
--
-- Run once per account as SECURITYADMIN (roles, grants) and SYSADMIN (objects); it is
-- idempotent (`if not exists`, grants are no-ops when already held).
--
--   market_loader       the loaders (market-load): write the raw tables in
--                       STOCKMARKETBATCH.PUBLIC and STOCKMARKETSTREAM.PUBLIC, nothing else.
--                       The databases, schemas and tables come from `market-load init`,
--                       run once as SYSADMIN after this script: a load creates nothing
--                       but its own transient staging table and temporary stage.
--   market_transformer  dbt (market-dbt): read the raw tables, own the schemas it
--                       builds (STAGING, ANALYTICS, REFERENCE) in STOCKMARKETBATCH.
--   market_ci           dbt slim CI (dbt-slim-ci.yml): create, build and drop its own PR_<n>
--                       schemas; read production (raw tables, STAGING, REFERENCE,
--                       ANALYTICS) for the deferred parents, never write it.
--   market_reader       analysts and BI: read the marts (ANALYTICS) only.
--
-- Every role gets its own small warehouse usage; none can create databases, roles or
-- users. Service users authenticate with key pairs (no passwords), see the end.
--
-- Every grant is used and every statement of a run is covered: infra/tests/
-- test_snowflake_grants.py records what init, the loads, dbt build and a reader issue
-- and checks each statement against these grants (a privilege no statement uses fails
-- it too, so remove a grant together with the code that needed it).

use role sysadmin;

create warehouse if not exists market_wh
warehouse_size = xsmall
auto_suspend = 60
auto_resume = true
initially_suspended = true;

create database if not exists stockmarketbatch;
create database if not exists stockmarketstream;

use role securityadmin;

create role if not exists market_loader;
create role if not exists market_transformer;
create role if not exists market_reader;
create role if not exists market_ci;

-- SYSADMIN owns everything the roles create, so admins keep control of the objects.
grant role market_loader to role sysadmin;
grant role market_transformer to role sysadmin;
grant role market_reader to role sysadmin;
grant role market_ci to role sysadmin;

grant usage on warehouse market_wh to role market_loader;
grant usage on warehouse market_wh to role market_transformer;
grant usage on warehouse market_wh to role market_reader;
grant usage on warehouse market_wh to role market_ci;

-- Loader: read and write the raw tables (DAILY_STOCK_METRICS, REALTIME_STOCK_ANALYTICS,
-- LOAD_AUDIT; created by `market-load init`) in the PUBLIC schemas: SELECT (the audit),
-- INSERT + UPDATE (the MERGE, the audit rows). It never deletes or truncates. CREATE TABLE
-- and CREATE STAGE are for the load's own transient staging table and temporary stage,
-- which it owns and drops. No access to dbt's schemas.
grant usage on database stockmarketbatch to role market_loader;
grant usage on database stockmarketstream to role market_loader;
grant usage, create table, create stage on schema stockmarketbatch.public
to role market_loader;
grant usage, create table, create stage on schema stockmarketstream.public
to role market_loader;
grant select, insert, update on all tables in schema stockmarketbatch.public
to role market_loader;
grant select, insert, update on future tables in schema stockmarketbatch.public
to role market_loader;
grant select, insert, update on all tables in schema stockmarketstream.public
to role market_loader;
grant select, insert, update on future tables in schema stockmarketstream.public
to role market_loader;

-- Transformer (dbt): read the raw tables, create its own schemas in STOCKMARKETBATCH
-- (it owns what it creates, so it can replace and drop its models).
grant usage on database stockmarketbatch to role market_transformer;
grant usage on database stockmarketstream to role market_transformer;
grant create schema on database stockmarketbatch to role market_transformer;
grant usage on schema stockmarketbatch.public to role market_transformer;
grant usage on schema stockmarketstream.public to role market_transformer;
grant select on all tables in schema stockmarketbatch.public to role market_transformer;
grant select on future tables in schema stockmarketbatch.public to role market_transformer;
grant select on all tables in schema stockmarketstream.public to role market_transformer;
grant select on future tables in schema stockmarketstream.public to role market_transformer;

-- dbt's production schemas are created here and handed to the transformer (dbt builds
-- into them as owner), so the grants below can name them before dbt's first run;
-- schema-level future grants then cover every table and view dbt creates there.
use role sysadmin;
create schema if not exists stockmarketbatch.staging;
create schema if not exists stockmarketbatch.reference;
create schema if not exists stockmarketbatch.analytics;
grant ownership on schema stockmarketbatch.staging to role market_transformer
copy current grants;
grant ownership on schema stockmarketbatch.reference to role market_transformer
copy current grants;
grant ownership on schema stockmarketbatch.analytics to role market_transformer
copy current grants;
use role securityadmin;

-- Reader: the marts only (they are tables; a mart materialized as a view needs
-- `grant select on all/future views` here, and the grants test says so). Raw (PUBLIC)
-- and STAGING stay private to the pipeline.
grant usage on database stockmarketbatch to role market_reader;
grant usage on schema stockmarketbatch.analytics to role market_reader;
grant select on all tables in schema stockmarketbatch.analytics to role market_reader;
grant select on future tables in schema stockmarketbatch.analytics to role market_reader;

-- Slim CI: builds state:modified+ into its own PR_<n> schemas (it creates them, so it
-- owns, replaces and drops what is in them) and reads production for the deferred
-- parents: raw tables, staging views, the seed, the marts. No ownership of, and no
-- CREATE/INSERT/UPDATE/DELETE on, any production schema: a PR cannot change production.
grant usage on database stockmarketbatch to role market_ci;
grant usage on database stockmarketstream to role market_ci;
grant create schema on database stockmarketbatch to role market_ci;
grant usage on schema stockmarketbatch.public to role market_ci;
grant usage on schema stockmarketstream.public to role market_ci;
grant select on all tables in schema stockmarketbatch.public to role market_ci;
grant select on future tables in schema stockmarketbatch.public to role market_ci;
grant select on all tables in schema stockmarketstream.public to role market_ci;
grant select on future tables in schema stockmarketstream.public to role market_ci;
grant usage on schema stockmarketbatch.staging to role market_ci;
grant select on all views in schema stockmarketbatch.staging to role market_ci;
grant select on future views in schema stockmarketbatch.staging to role market_ci;
grant usage on schema stockmarketbatch.reference to role market_ci;
grant select on all tables in schema stockmarketbatch.reference to role market_ci;
grant select on future tables in schema stockmarketbatch.reference to role market_ci;
grant usage on schema stockmarketbatch.analytics to role market_ci;
grant select on all tables in schema stockmarketbatch.analytics to role market_ci;
grant select on future tables in schema stockmarketbatch.analytics to role market_ci;

-- Service users: key-pair authentication only (set RSA_PUBLIC_KEY from the PEM of
-- `openssl rsa -in rsa_key.p8 -pubout`); the private keys live in the secret stores
-- (GitHub secret SNOWFLAKE_PRIVATE_KEY for slim CI, the deployment's secret manager).
create user if not exists market_loader_svc
    default_role = market_loader
    default_warehouse = market_wh
    must_change_password = false
    comment = 'market-load (loaders); key-pair auth';
create user if not exists market_dbt_svc
    default_role = market_transformer
    default_warehouse = market_wh
    must_change_password = false
    comment = 'market-dbt; key-pair auth';
create user if not exists market_ci_svc
    default_role = market_ci
    default_warehouse = market_wh
    must_change_password = false
    comment = 'dbt slim CI (GitHub Actions); key-pair auth';

grant role market_loader to user market_loader_svc;
grant role market_transformer to user market_dbt_svc;
grant role market_ci to user market_ci_svc;
