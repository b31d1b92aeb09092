-- Runs once, when the PostgreSQL volume is created: the database of simpost's catalog of archives
-- and their copies, beside Airflow's own (the catalog never lives in Airflow's metadata DB).
-- On a volume made before this file existed, run it by hand: psql -U airflow -f deploy/postgres-init.sql
CREATE DATABASE simpost_catalog;
