import { CurrentPrincipal, Principal, Scopes } from '@app/auth';
import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { UserDto } from './user.dto';
import { UsersService } from './users.service';
import { ApiException } from '@app/http';

@ApiTags('users')
@Controller('users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get('me')
  @Scopes()
  @ApiOkResponse({ type: UserDto, description: 'The caller.' })
  @ProblemResponses(401)
  async me(@CurrentPrincipal() principal: Principal): Promise<UserDto> {
    const user = await this.users.findById(principal.userId);
    // A valid token for a user that no longer exists is no credential at all.
    if (!user) throw new ApiException('UNAUTHENTICATED', 'The account no longer exists.');
    return UserDto.from(user);
  }
}
