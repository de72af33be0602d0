import { CurrentPrincipal, Principal, Public, Scopes } from '@app/auth';
import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ProblemResponses } from '../common/problem-responses.decorator';
import { AuthService } from './auth.service';
import { LoginDto, RefreshDto, RegisterDto, TokenPairDto, WhoAmIDto } from './dto/auth.dto';

@ApiTags('auth')
@Controller('auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  /**
   * Who the credential says the caller is, and what it may do: from the token alone, or the
   * API key's cached verification, with no database round trip.
   */
  @Get('whoami')
  @Scopes()
  @ApiOkResponse({ type: WhoAmIDto })
  @ProblemResponses(401)
  whoami(@CurrentPrincipal() principal: Principal): WhoAmIDto {
    return WhoAmIDto.from(principal);
  }

  @Public()
  @Post('register')
  @ApiCreatedResponse({ type: TokenPairDto, description: 'Account created and signed in.' })
  @ProblemResponses(400, 409, 413, 415)
  register(@Body() dto: RegisterDto): Promise<TokenPairDto> {
    return this.auth.register(dto);
  }

  @Public()
  @Post('login')
  @HttpCode(200)
  @ApiOkResponse({ type: TokenPairDto })
  @ProblemResponses(400, 401)
  login(@Body() dto: LoginDto): Promise<TokenPairDto> {
    return this.auth.login(dto);
  }

  @Public()
  @Post('refresh')
  @HttpCode(200)
  @ApiOkResponse({ type: TokenPairDto, description: 'A new pair; the token sent is spent.' })
  @ProblemResponses(400, 401)
  refresh(@Body() dto: RefreshDto): Promise<TokenPairDto> {
    return this.auth.refresh(dto.refreshToken);
  }
}
