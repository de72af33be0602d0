import { Scopes } from '@app/auth';
import type { IfMatch } from '@app/http';
import { Body, Controller, Get, Param, Patch, Query } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { IfMatchCondition, UnversionedIfMatch } from '../common/resource-routes.decorator';
import { uuidParam } from '../common/uuid-param.pipe';
import { UserDto } from '../users/user.dto';
import { AdminUsersService } from './admin-users.service';
import { AdminUserPageDto, ListAdminUsersQueryDto, UpdateAdminUserDto } from './dto/admin-user.dto';

const id = uuidParam('User');

/**
 * Every account, for administrators: the caller's role is read from the database on each
 * request (an API key also needs the `admin` scope), so a demoted admin is refused at once.
 */
@ApiTags('admin')
@Scopes('admin')
@ProblemResponses(401, 403)
@Controller('admin/users')
export class AdminUsersController {
  constructor(private readonly users: AdminUsersService) {}

  @Get()
  @ApiOkResponse({ type: AdminUserPageDto, description: 'Newest first unless `sort` says.' })
  @ProblemResponses(400)
  list(@Query() query: ListAdminUsersQueryDto): Promise<AdminUserPageDto> {
    return this.users.list(query);
  }

  @Patch(':id')
  @ApiOkResponse({
    type: UserDto,
    description: "Changed; the user's API keys carry the change within a second.",
  })
  @ProblemResponses(400, 404, 409, 413, 415)
  @UnversionedIfMatch()
  update(
    @Param('id', id) userId: string,
    @Body() dto: UpdateAdminUserDto,
    @IfMatchCondition() ifMatch: IfMatch,
  ): Promise<UserDto> {
    return this.users.update(userId, dto, ifMatch);
  }
}
