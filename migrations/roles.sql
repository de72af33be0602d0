-- What taskhub_app (the api and the worker) may do in a schema that taskhub_migrator owns: read
-- and write rows, run the request log's partition functions, and no DDL. Run in the Taskhub
-- database as taskhub_migrator (or a superuser), before or after the migrations and as often as
-- you like: it is idempotent, and the default privileges cover what later migrations create.
-- test/database-roles.e2e-spec.ts runs this file.

-- Only the owner and taskhub_app connect; nobody else may, nor make temporary tables.
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO taskhub_app', current_database());
END
$$;

-- Only the owner creates objects in the schema (PostgreSQL 15's default for a new database, not
-- for one upgraded from an earlier version).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO taskhub_app;

-- What the migrations have made so far...
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO taskhub_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO taskhub_app;
DO $$
DECLARE
  fn regprocedure;
BEGIN
  -- Ours only: pg_trgm's functions belong to the superuser that installed it.
  FOR fn IN
    SELECT oid::regprocedure FROM pg_proc
     WHERE pronamespace = 'public'::regnamespace AND proowner = 'taskhub_migrator'::regrole
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO taskhub_app', fn);
  END LOOP;
END
$$;

-- ...and what they make from now on.
ALTER DEFAULT PRIVILEGES FOR ROLE taskhub_migrator IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO taskhub_app;
ALTER DEFAULT PRIVILEGES FOR ROLE taskhub_migrator IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO taskhub_app;
ALTER DEFAULT PRIVILEGES FOR ROLE taskhub_migrator IN SCHEMA public
  GRANT EXECUTE ON FUNCTIONS TO taskhub_app;
