import type { DataSource } from 'typeorm';
import { hashPassword } from './password-hasher';

/**
 * Makes `email` an administrator: creates the account ("Administrator", with this password) when
 * no user has that email, else promotes the user and leaves their password as it is, so that
 * restarting with another ADMIN_PASSWORD can never take an account over. One statement on the
 * email's unique index, so instances starting together cannot create it twice or fail on the
 * race. `created` is false for an account that already existed, admin or not.
 */
export async function ensureAdmin(
  dataSource: DataSource,
  email: string,
  password: string,
): Promise<{ id: string; created: boolean }> {
  // Hashed even when the account exists: the one statement needs it, and it runs once a start.
  const passwordHash = await hashPassword(password);
  const rows = await dataSource.query<{ id: string; created: boolean }[]>(
    `INSERT INTO users (email, name, password_hash, role)
     VALUES ($1, 'Administrator', $2, 'admin')
     ON CONFLICT (email) DO UPDATE
        SET role = 'admin',
            updated_at = CASE WHEN users.role = 'admin' THEN users.updated_at ELSE now() END
     RETURNING id, (xmax = 0) AS created`,
    [email.trim().toLowerCase(), passwordHash],
  );
  const [row] = rows;
  if (!row) throw new Error('ensureAdmin: the upsert returned no row');
  return { id: row.id, created: row.created };
}
