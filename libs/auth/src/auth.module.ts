import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { AccessTokenService } from './access-token.service';
import { AuthGuard } from './auth.guard';
import { JwtStrategy } from './jwt.strategy';

@Global()
@Module({
  imports: [PassportModule],
  providers: [AccessTokenService, JwtStrategy, { provide: APP_GUARD, useClass: AuthGuard }],
  exports: [AccessTokenService],
})
export class AuthModule {}
