import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/**
 * Whether a user is an administrator now. Admin routes ask the database on every request rather
 * than trust the role in an access token, which could be up to its lifetime old: a demoted admin
 * loses /v1/admin at once. Admin traffic is small; the query is one primary-key lookup.
 */
@Injectable()
export class AdminRoles {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async isAdmin(userId: string): Promise<boolean> {
    const rows = await this.dataSource.query<{ role: string }[]>(
      `SELECT role FROM users WHERE id = $1`,
      [userId],
    );
    return rows[0]?.role === 'admin';
  }
}
