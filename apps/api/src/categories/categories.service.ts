import type { Principal } from '@app/auth';
import { CategoryEntity, TaskEntity } from '@app/database';
import { ApiException, IfMatch, Keyset, notFound } from '@app/http';
import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, EntityManager, Repository } from 'typeorm';
import {
  IdempotencyRequest,
  IdempotencyService,
  IdempotentResult,
} from '../common/idempotency.service';
import {
  UNIQUE_VIOLATION,
  lockOwnedForWrite,
  requireChanges,
  sqlState,
} from '../common/owned-rows';
import {
  CategoryDto,
  CategoryPageDto,
  CreateCategoryDto,
  ListCategoriesQueryDto,
  UpdateCategoryDto,
} from './dto/category.dto';

const keyset = new Keyset<CategoryEntity>(
  {
    name: { property: 'name', column: 'c.name', sqlType: 'text' },
    createdAt: { property: 'createdAt', column: 'c.created_at', sqlType: 'timestamptz' },
  },
  'c.id',
);

async function uniqueName<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (sqlState(error) === UNIQUE_VIOLATION) {
      throw new ApiException('CATEGORY_NAME_TAKEN', 'You already have a category with this name.');
    }
    throw error;
  }
}

@Injectable()
export class CategoriesService {
  constructor(
    @InjectRepository(CategoryEntity) private readonly categories: Repository<CategoryEntity>,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly idempotency: IdempotencyService,
  ) {}

  create(
    principal: Principal,
    dto: CreateCategoryDto,
    idempotency: IdempotencyRequest,
  ): Promise<IdempotentResult<CategoryDto>> {
    return this.idempotency.run(principal.userId, idempotency, async (manager: EntityManager) => {
      const category = manager.create(CategoryEntity, {
        userId: principal.userId,
        name: dto.name,
        color: dto.color ?? null,
      });
      return CategoryDto.from(await uniqueName(manager.save(category)));
    });
  }

  async list(principal: Principal, query: ListCategoriesQueryDto): Promise<CategoryPageDto> {
    const qb = this.categories
      .createQueryBuilder('c')
      .where('c.user_id = :userId', { userId: principal.userId });
    const rows = await keyset.apply(qb, query.sort, query.cursor, query.limit).getMany();
    const page = keyset.page(rows, query.sort, query.limit);
    return {
      data: page.data.map((category) => CategoryDto.from(category)),
      nextCursor: page.nextCursor,
    };
  }

  async get(principal: Principal, id: string): Promise<CategoryDto> {
    const category = await this.categories.findOneBy({ id, userId: principal.userId });
    if (!category) throw notFound('Category');
    return CategoryDto.from(category);
  }

  update(
    principal: Principal,
    id: string,
    dto: UpdateCategoryDto,
    ifMatch: IfMatch,
  ): Promise<CategoryDto> {
    return this.dataSource.transaction(async (manager) => {
      await this.lockForWrite(manager, principal, id, ifMatch);
      await uniqueName(manager.update(CategoryEntity, { id }, requireChanges(dto)));
      return CategoryDto.from(await manager.findOneByOrFail(CategoryEntity, { id }));
    });
  }

  /** The category's tasks stay, without a category (and with a new version: they changed). */
  remove(principal: Principal, id: string, ifMatch: IfMatch): Promise<void> {
    return this.dataSource.transaction(async (manager) => {
      await this.lockForWrite(manager, principal, id, ifMatch);
      await manager.update(
        TaskEntity,
        { categoryId: id, userId: principal.userId },
        { categoryId: null },
      );
      await manager.delete(CategoryEntity, { id });
    });
  }

  /** The caller's category, locked for this transaction, after the If-Match check. */
  private lockForWrite(
    manager: EntityManager,
    principal: Principal,
    id: string,
    ifMatch: IfMatch,
  ): Promise<CategoryEntity> {
    return lockOwnedForWrite(
      manager,
      CategoryEntity,
      { id, userId: principal.userId },
      ifMatch,
      'Category',
    );
  }
}
