import { MigrationInterface, QueryRunner } from 'typeorm';

/** Days back a partition may be made for: REQUEST_LOG_RETENTION_DAYS at most, and one for clocks. */
const OLDEST_DAYS = 3651;
/** Days ahead: an api whose clock is further off than this is broken, not early. */
const NEWEST_DAYS = 7;

/**
 * The worker's partition maintenance (a daily partition of `request_logs` made before it is
 * written to, and dropped past REQUEST_LOG_RETENTION_DAYS) through two functions, so that the
 * apps' role needs no DDL rights: SECURITY DEFINER, they run with the rights of their owner, the
 * role that migrates.
 *
 * Each takes a day, never a name: the only tables they touch are `request_logs_pYYYYMMDD`, made as
 * partitions of `request_logs` for days from OLDEST_DAYS before today (UTC) to NEWEST_DAYS after
 * it, and dropped only if they are such a partition and their day is past. As PostgreSQL's
 * documentation recommends for SECURITY DEFINER, each pins its search_path (the schema migrated,
 * then pg_temp, so no caller's temporary table can stand in for `request_logs`), and PUBLIC may
 * not execute them: the owner can, and the apps' role once granted (migrations/roles.sql).
 */
export class RequestLogPartitionFunctions1795996800000 implements MigrationInterface {
  name = 'RequestLogPartitionFunctions1795996800000';

  async up(q: QueryRunner): Promise<void> {
    const [{ schema }] = (await q.query(`SELECT current_schema() AS schema`)) as [
      { schema: string },
    ];
    const searchPath = `${q.connection.driver.escape(schema)}, pg_temp`;
    await q.query(`
      CREATE FUNCTION request_logs_create_partition(for_day date) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${searchPath}
      AS $$
      DECLARE
        today date := (now() AT TIME ZONE 'UTC')::date;
      BEGIN
        IF for_day IS NULL OR for_day < today - ${OLDEST_DAYS} OR for_day > today + ${NEWEST_DAYS} THEN
          RAISE EXCEPTION 'request_logs_create_partition: no partition for %', for_day
            USING ERRCODE = 'invalid_parameter_value',
              HINT = format('Days from %s to %s (UTC) may have one.',
                today - ${OLDEST_DAYS}, today + ${NEWEST_DAYS});
        END IF;
        EXECUTE format(
          'CREATE TABLE IF NOT EXISTS %I PARTITION OF request_logs FOR VALUES FROM (%L) TO (%L)',
          'request_logs_p' || to_char(for_day, 'YYYYMMDD'),
          to_char(for_day, 'YYYY-MM-DD') || ' 00:00:00+00',
          to_char(for_day + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
      END
      $$`);
    await q.query(`
      CREATE FUNCTION request_logs_drop_partition(for_day date) RETURNS boolean
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${searchPath}
      AS $$
      DECLARE
        partition_name text := 'request_logs_p' || to_char(for_day, 'YYYYMMDD');
        target regclass := to_regclass(quote_ident(partition_name));
      BEGIN
        IF for_day IS NULL OR for_day >= (now() AT TIME ZONE 'UTC')::date THEN
          RAISE EXCEPTION 'request_logs_drop_partition: % is not a past day', for_day
            USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF target IS NULL OR NOT EXISTS (
          SELECT 1 FROM pg_inherits
           WHERE inhrelid = target AND inhparent = 'request_logs'::regclass
        ) THEN
          RETURN false;
        END IF;
        EXECUTE format('DROP TABLE IF EXISTS %I', partition_name);
        RETURN true;
      END
      $$`);
    for (const fn of ['request_logs_create_partition', 'request_logs_drop_partition']) {
      await q.query(`REVOKE ALL ON FUNCTION ${fn}(date) FROM PUBLIC`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION request_logs_drop_partition(date)`);
    await q.query(`DROP FUNCTION request_logs_create_partition(date)`);
  }
}
