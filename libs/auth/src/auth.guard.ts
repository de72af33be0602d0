import { ApiException } from '@app/http';
import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard as PassportAuthGuard } from '@nestjs/passport';
import { IS_PUBLIC } from './public.decorator';

/**
 * The one global guard (registered as APP_GUARD): every route needs a valid credential unless it
 * is marked @Public(). Every failure is the same 401, whatever was wrong with the token.
 */
@Injectable()
export class AuthGuard extends PassportAuthGuard('jwt') {
  constructor(private readonly reflector: Reflector) {
    super();
  }

  override canActivate(context: ExecutionContext) {
    const isPublic = this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (isPublic) return true;
    return super.canActivate(context);
  }

  override handleRequest<TUser>(error: unknown, user: TUser | false, info: unknown): TUser {
    if (error || !user) {
      const missing = info === 'missing';
      throw new ApiException(
        'UNAUTHENTICATED',
        missing
          ? 'Send an access token as "Authorization: Bearer <token>".'
          : 'The access token is invalid or has expired.',
        undefined,
        { 'www-authenticate': missing ? 'Bearer' : 'Bearer error="invalid_token"' },
      );
    }
    return user;
  }
}
