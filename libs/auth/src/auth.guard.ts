import { ApiException } from '@app/http';
import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard as PassportAuthGuard } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
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

  /**
   * Whether each handler is @Public(), read from its metadata once: decorators are applied when
   * the class is defined, so the answer never changes, and reading it costs on every request.
   */
  private readonly openHandlers = new WeakMap<object, boolean>();

  override canActivate(context: ExecutionContext) {
    return this.isPublic(context) || super.canActivate(context);
  }

  private isPublic(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    let open = this.openHandlers.get(handler);
    if (open === undefined) {
      open =
        this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, [
          handler,
          context.getClass(),
        ]) === true;
      this.openHandlers.set(handler, open);
    }
    return open;
  }

  /**
   * Passport decorates the object it authenticates with half a dozen properties (logIn, logOut,
   * authInfo, ...). Handing it a stand-in with the headers keeps Fastify's request objects in their
   * one shape, which the benchmark showed is worth it; the user is put on the request below.
   */
  override getRequest(context: ExecutionContext): { headers: FastifyRequest['headers'] } {
    return { headers: context.switchToHttp().getRequest<FastifyRequest>().headers };
  }

  override handleRequest<TUser>(
    error: unknown,
    user: TUser | false,
    info: unknown,
    context: ExecutionContext,
  ): TUser {
    if (!error && user) {
      context.switchToHttp().getRequest<FastifyRequest & { user: unknown }>().user = user;
      return user;
    }
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
}
