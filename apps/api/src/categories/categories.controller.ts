import { CurrentPrincipal, Principal, Scopes } from '@app/auth';
import { Cached, Invalidates } from '@app/cache';
import { IfMatch } from '@app/http';
import { Body, Controller, Param, Query, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { created } from '../common/created';
import type { IdempotencyRequest } from '../common/idempotency.service';
import { ProblemResponses } from '../common/problem-responses.decorator';
import {
  CreateRoute,
  DeleteRoute,
  IfMatchCondition,
  Idempotency,
  ListRoute,
  ReadRoute,
  UpdateRoute,
} from '../common/resource-routes.decorator';
import { uuidParam } from '../common/uuid-param.pipe';
import {
  CreateCategoryDto,
  CategoryDto,
  CategoryPageDto,
  ListCategoriesQueryDto,
  UpdateCategoryDto,
} from './dto/category.dto';
import { CategoriesService } from './categories.service';

const id = uuidParam('Category');

@ApiTags('categories')
@ProblemResponses(401, 403)
@Controller('categories')
export class CategoriesController {
  constructor(private readonly categories: CategoriesService) {}

  @Scopes('categories:write')
  @Invalidates('categories')
  @CreateRoute(CategoryDto, 409)
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() dto: CreateCategoryDto,
    @Idempotency() idempotency: IdempotencyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<CategoryDto> {
    return created(reply, await this.categories.create(principal, dto, idempotency));
  }

  @Scopes('categories:read')
  @Cached('categories')
  @ListRoute(CategoryPageDto)
  list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListCategoriesQueryDto,
  ): Promise<CategoryPageDto> {
    return this.categories.list(principal, query);
  }

  @Scopes('categories:read')
  @Cached('categories')
  @ReadRoute(CategoryDto)
  get(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) categoryId: string,
  ): Promise<CategoryDto> {
    return this.categories.get(principal, categoryId);
  }

  @Scopes('categories:write')
  @Invalidates('categories')
  @UpdateRoute(CategoryDto, 409)
  update(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) categoryId: string,
    @Body() dto: UpdateCategoryDto,
    @IfMatchCondition() ifMatch: IfMatch,
  ): Promise<CategoryDto> {
    return this.categories.update(principal, categoryId, dto, ifMatch);
  }

  @Scopes('categories:write')
  // Its tasks lose their category: they change too.
  @Invalidates('categories', 'tasks')
  @DeleteRoute('Deleted; its tasks are left without a category.')
  remove(
    @CurrentPrincipal() principal: Principal,
    @Param('id', id) categoryId: string,
    @IfMatchCondition() ifMatch: IfMatch,
  ): Promise<void> {
    return this.categories.remove(principal, categoryId, ifMatch);
  }
}
