-- The job ledger's database on the Postgres that runs Prefect's: its own role and database,
-- so workers reach the ledger and nothing of Prefect's. Idempotent: run at every `up`.
--   psql -v ledger_password=SECRET -f ledger-db.sql     (as the server's superuser)
-- The tables are created by soraflow itself (Alembic migrations) when a worker first opens it.
SELECT format('CREATE ROLE soraflow_ledger LOGIN PASSWORD %L', :'ledger_password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'soraflow_ledger')\gexec
SELECT format('ALTER ROLE soraflow_ledger PASSWORD %L', :'ledger_password')\gexec
SELECT 'CREATE DATABASE soraflow_ledger OWNER soraflow_ledger'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'soraflow_ledger')\gexec
REVOKE ALL ON DATABASE soraflow_ledger FROM PUBLIC;
