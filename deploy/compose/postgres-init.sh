#!/bin/bash
# Runs once, when the compose PostgreSQL volume is first initialised
# (/docker-entrypoint-initdb.d): one database `ccp` with a role and a schema per
# service. Each service owns its schema; no role can read another's tables.
# Each service connects with its own role and, without a configured schema,
# uses the schema named after itself (platform/src/db.rs).
set -euo pipefail
: "${CCP_DB_PASSWORD:?set CCP_DB_PASSWORD for the service roles}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$CCP_DB_PASSWORD" <<'SQL'
CREATE DATABASE ccp;
\connect ccp
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE ROLE ccp_identity LOGIN PASSWORD :'password';
CREATE ROLE ccp_accounts LOGIN PASSWORD :'password';
CREATE ROLE ccp_delegation LOGIN PASSWORD :'password';
CREATE ROLE ccp_notifications LOGIN PASSWORD :'password';
CREATE SCHEMA identity AUTHORIZATION ccp_identity;
CREATE SCHEMA accounts AUTHORIZATION ccp_accounts;
CREATE SCHEMA delegation AUTHORIZATION ccp_delegation;
CREATE SCHEMA notifications AUTHORIZATION ccp_notifications;
SQL
