import { CurrentPrincipal, Principal } from '@app/auth';
import { EtagInterceptor, parseIfMatch } from '@app/http';
import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Patch,
  Post,
  Query,
  Req,
  Res,
  UseInterceptors,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { created } from '../common/created';
import {
  IdempotencyKeyHeader,
  IfMatchHeader,
  IfNoneMatchHeader,
} from '../common/headers.decorator';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { uuidParam } from '../common/uuid-param.pipe';
import { CategoriesService } from './categories.service';
import {
  CategoryDto,
  CategoryPageDto,
  CreateCategoryDto,
  ListCategoriesQueryDto,
  UpdateCategoryDto,
} from './dto/category.dto';

@ApiTags('categories')
@ApiBearerAuth()
@ApiHeader({ name: 'X-Request-ID', required: false, description: 'Echoed back; else one is made.' })
@ProblemResponses(401)
@Controller('categories')
@UseInterceptors(EtagInterceptor)
export class CategoriesController {
  constructor(private readonly categories: CategoriesService) {}

  @Post()
  @IdempotencyKeyHeader()
  @ApiCreatedResponse({ type: CategoryDto })
  @ProblemResponses(400, 409, 413, 415, 422)
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body() dto: CreateCategoryDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<CategoryDto> {
    const result = await this.categories.create(principal, dto, idempotencyKey, request.body);
    return created(reply, '/v1/categories', result);
  }

  @Get()
  @ApiOkResponse({ type: CategoryPageDto })
  @ProblemResponses(400)
  list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListCategoriesQueryDto,
  ): Promise<CategoryPageDto> {
    return this.categories.list(principal, query);
  }

  @Get(':id')
  @IfNoneMatchHeader()
  @ApiOkResponse({ type: CategoryDto, description: 'With a strong ETag.' })
  @ProblemResponses(304, 404)
  get(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('Category')) id: string,
  ): Promise<CategoryDto> {
    return this.categories.get(principal, id);
  }

  @Patch(':id')
  @IfMatchHeader()
  @ApiOkResponse({ type: CategoryDto })
  @ProblemResponses(400, 404, 409, 412)
  update(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('Category')) id: string,
    @Body() dto: UpdateCategoryDto,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<CategoryDto> {
    return this.categories.update(principal, id, dto, parseIfMatch(ifMatch));
  }

  @Delete(':id')
  @HttpCode(204)
  @IfMatchHeader()
  @ApiNoContentResponse({ description: 'Deleted; its tasks are left without a category.' })
  @ProblemResponses(404, 412)
  remove(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('Category')) id: string,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<void> {
    return this.categories.remove(principal, id, parseIfMatch(ifMatch));
  }
}
