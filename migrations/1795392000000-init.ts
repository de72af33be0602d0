import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Users, categories, tasks, refresh tokens and idempotency keys.
 *
 * Every task query is scoped by its owner, so every filter and sort index leads with user_id and
 * ends with id, the keyset tie-breaker. Times are timestamptz(3): millisecond precision, so a
 * cursor carrying a JS Date reproduces the stored value exactly.
 */
export class Init1795392000000 implements MigrationInterface {
  name = 'Init1795392000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE EXTENSION IF NOT EXISTS pg_trgm`);
    await q.query(`CREATE TYPE user_role AS ENUM ('user', 'admin')`);
    await q.query(`CREATE TYPE tier AS ENUM ('anonymous', 'free', 'pro', 'enterprise')`);
    await q.query(`CREATE TYPE task_status AS ENUM ('todo', 'in_progress', 'done')`);
    // Rank order: ORDER BY priority sorts low < medium < high < urgent.
    await q.query(`CREATE TYPE task_priority AS ENUM ('low', 'medium', 'high', 'urgent')`);

    await q.query(`
      CREATE TABLE users (
        id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        email         varchar(320) NOT NULL,
        name          varchar(100) NOT NULL,
        password_hash text NOT NULL,
        role          user_role NOT NULL DEFAULT 'user',
        tier          tier NOT NULL DEFAULT 'free',
        created_at    timestamptz(3) NOT NULL DEFAULT now(),
        updated_at    timestamptz(3) NOT NULL DEFAULT now(),
        CONSTRAINT users_email_lowercase CHECK (email = lower(email))
      )`);
    await q.query(`CREATE UNIQUE INDEX users_email_key ON users (email)`);

    await q.query(`
      CREATE TABLE categories (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name       varchar(100) NOT NULL,
        color      varchar(7),
        version    integer NOT NULL DEFAULT 1,
        created_at timestamptz(3) NOT NULL DEFAULT now(),
        updated_at timestamptz(3) NOT NULL DEFAULT now(),
        CONSTRAINT categories_id_user_key UNIQUE (id, user_id)
      )`);
    // Names are unique per user, ignoring case.
    await q.query(
      `CREATE UNIQUE INDEX categories_user_name_key ON categories (user_id, lower(name))`,
    );
    await q.query(
      `CREATE INDEX categories_user_created_idx ON categories (user_id, created_at, id)`,
    );
    await q.query(`CREATE INDEX categories_user_name_idx ON categories (user_id, name, id)`);

    await q.query(`
      CREATE TABLE tasks (
        id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        category_id uuid,
        title       varchar(200) NOT NULL,
        description text,
        status      task_status NOT NULL DEFAULT 'todo',
        priority    task_priority NOT NULL DEFAULT 'medium',
        due_date    timestamptz(3),
        tags        text[] NOT NULL DEFAULT '{}',
        version     integer NOT NULL DEFAULT 1,
        created_at  timestamptz(3) NOT NULL DEFAULT now(),
        updated_at  timestamptz(3) NOT NULL DEFAULT now(),
        CONSTRAINT tasks_description_length CHECK (char_length(description) <= 10000),
        -- A task can only point at a category of its own owner; deleting the category clears
        -- category_id alone (the column list needs PostgreSQL 15).
        CONSTRAINT tasks_category_fkey FOREIGN KEY (category_id, user_id)
          REFERENCES categories (id, user_id) ON DELETE SET NULL (category_id)
      )`);
    // One index per sort (both directions are served by a backward scan, except dueDate, whose
    // NULLs stay last in both directions) and per filter.
    await q.query(`CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at, id)`);
    await q.query(
      `CREATE INDEX tasks_user_due_asc_idx ON tasks (user_id, due_date ASC NULLS LAST, id)`,
    );
    await q.query(
      `CREATE INDEX tasks_user_due_desc_idx ON tasks (user_id, due_date DESC NULLS LAST, id DESC)`,
    );
    await q.query(`CREATE INDEX tasks_user_priority_idx ON tasks (user_id, priority, id)`);
    await q.query(`CREATE INDEX tasks_user_title_idx ON tasks (user_id, title, id)`);
    await q.query(`CREATE INDEX tasks_user_status_idx ON tasks (user_id, status, created_at, id)`);
    await q.query(`CREATE INDEX tasks_category_idx ON tasks (category_id, user_id)`);
    await q.query(`CREATE INDEX tasks_tags_idx ON tasks USING gin (tags)`);
    // `q` search: case-insensitive substring match on title and description, trigram-indexed.
    await q.query(
      `CREATE INDEX tasks_search_idx ON tasks USING gin ((title || ' ' || coalesce(description, '')) gin_trgm_ops)`,
    );

    await q.query(`
      CREATE TABLE refresh_tokens (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        family_id  uuid NOT NULL,
        token_hash bytea NOT NULL,
        expires_at timestamptz(3) NOT NULL,
        used_at    timestamptz(3),
        revoked_at timestamptz(3),
        created_at timestamptz(3) NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash)`);
    await q.query(`CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id)`);
    await q.query(`CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id)`);
    await q.query(`CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at)`);

    await q.query(`
      CREATE TABLE idempotency_keys (
        user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        key              varchar(255) NOT NULL,
        request_hash     bytea NOT NULL,
        response_status  smallint,
        response_body    jsonb,
        created_at       timestamptz(3) NOT NULL DEFAULT now(),
        PRIMARY KEY (user_id, key)
      )`);
    await q.query(`CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE idempotency_keys`);
    await q.query(`DROP TABLE refresh_tokens`);
    await q.query(`DROP TABLE tasks`);
    await q.query(`DROP TABLE categories`);
    await q.query(`DROP TABLE users`);
    await q.query(`DROP TYPE task_priority`);
    await q.query(`DROP TYPE task_status`);
    await q.query(`DROP TYPE tier`);
    await q.query(`DROP TYPE user_role`);
  }
}
