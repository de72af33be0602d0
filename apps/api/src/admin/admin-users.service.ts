import { ApiKeyVerifier } from '@app/auth';
import { UserEntity } from '@app/database';
import { ApiException, IfMatch, Keyset, notFound } from '@app/http';
import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { checkUnversioned, requireChanges } from '../common/owned-rows';
import { UserDto } from '../users/user.dto';
import { AdminUserPageDto, ListAdminUsersQueryDto, UpdateAdminUserDto } from './dto/admin-user.dto';

const keyset = new Keyset<UserEntity>(
  { createdAt: { property: 'createdAt', column: 'u.created_at', sqlType: 'timestamptz' } },
  'u.id',
);

@Injectable()
export class AdminUsersService {
  constructor(
    @InjectRepository(UserEntity) private readonly users: Repository<UserEntity>,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly verifier: ApiKeyVerifier,
  ) {}

  async list(query: ListAdminUsersQueryDto): Promise<AdminUserPageDto> {
    const qb = this.users.createQueryBuilder('u');
    if (query.role !== undefined) qb.andWhere('u.role = :role', { role: query.role });
    if (query.tier !== undefined) qb.andWhere('u.tier = :tier', { tier: query.tier });
    if (query.email !== undefined) qb.andWhere('u.email = :email', { email: query.email });
    const rows = await keyset.apply(qb, query.sort, query.cursor, query.limit).getMany();
    const page = keyset.page(rows, query.sort, query.limit);
    return { data: page.data.map((user) => UserDto.from(user)), nextCursor: page.nextCursor };
  }

  /**
   * Changes a user's role or tier. Their API keys are dropped from every instance's cache after
   * the commit (not before: a key re-read in between would cache the old row), so the keys carry
   * the new role and tier within a second; access tokens carry them from the next sign-in.
   */
  async update(id: string, dto: UpdateAdminUserDto, ifMatch: IfMatch): Promise<UserDto> {
    // The precondition before the body, as for tasks (RFC 9110 §13.2.1): 404, then 412, then 400.
    await checkUnversioned(ifMatch, 'User', () =>
      this.dataSource.manager.existsBy(UserEntity, { id }),
    );
    const changes = requireChanges(dto);
    const user = await this.dataSource.transaction(async (manager) => {
      if (changes.role === 'user') {
        // Every admin row, locked in one order (no deadlock between two demotions): a concurrent
        // demotion waits here, then sees the first one's result. So two admins demoting each
        // other cannot leave none.
        const admins = await manager.query<{ id: string }[]>(
          `SELECT id FROM users WHERE role = 'admin' ORDER BY id FOR UPDATE`,
        );
        if (admins.length === 1 && admins[0]?.id === id) {
          throw new ApiException(
            'LAST_ADMIN',
            'This is the last administrator; make another user an administrator first.',
          );
        }
      }
      const target = await manager.findOne(UserEntity, {
        where: { id },
        lock: { mode: 'pessimistic_write' },
      });
      if (!target) throw notFound('User');
      await manager.update(UserEntity, { id }, changes);
      return manager.findOneByOrFail(UserEntity, { id });
    });
    await this.verifier.invalidateUser(id);
    return UserDto.from(user);
  }
}
