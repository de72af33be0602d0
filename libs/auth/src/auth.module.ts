import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { AccessTokenService } from './access-token.service';
import { AdminRoles } from './admin-roles';
import { ApiKeyUsage } from './api-key-usage';
import { ApiKeyVerifier } from './api-key-verifier';
import { ApiKeyStrategy } from './api-key.strategy';
import { AuthGuard } from './auth.guard';
import { JwtStrategy } from './jwt.strategy';

@Global()
@Module({
  imports: [PassportModule],
  providers: [
    AccessTokenService,
    AdminRoles,
    ApiKeyUsage,
    ApiKeyVerifier,
    JwtStrategy,
    ApiKeyStrategy,
    { provide: APP_GUARD, useClass: AuthGuard },
  ],
  exports: [AccessTokenService, ApiKeyVerifier, ApiKeyUsage],
})
export class AuthModule {}
