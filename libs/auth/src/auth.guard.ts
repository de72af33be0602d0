import { ApiException } from '@app/http';
import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard as PassportAuthGuard } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { AdminRoles } from './admin-roles';
import type { ApiKeyPrincipal, Principal } from './principal';
import { IS_PUBLIC } from './public.decorator';
import { NO_API_KEYS, REQUIRED_SCOPES, Scope } from './scopes';

/** What a route asks of its caller, from its decorators. */
interface Requirements {
  open: boolean;
  scopes: readonly Scope[] | undefined;
  admin: boolean;
  noApiKeys: boolean;
}

type Challenge = 'missing' | 'invalid';

/**
 * The one global guard (registered as APP_GUARD). Every route needs a credential unless it is
 * @Public(): an access token (`Authorization: Bearer`, the `jwt` strategy) or an API key
 * (`X-API-Key`, the `api-key` strategy), tried in that order through passport. Then the route's
 * @Scopes(): an API key must hold each one (403 INSUFFICIENT_SCOPE); `admin` needs the admin
 * role, read from the database at the time of the request, so a demotion takes effect at once.
 */
@Injectable()
export class AuthGuard extends PassportAuthGuard(['jwt', 'api-key']) {
  constructor(
    private readonly reflector: Reflector,
    private readonly adminRoles: AdminRoles,
  ) {
    super();
  }

  /**
   * Each handler's requirements, read from its metadata once: decorators are applied when the
   * class is defined, so the answer never changes, and reading it costs on every request.
   */
  private readonly requirements = new WeakMap<object, Requirements>();

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const needs = this.requirementsOf(context);
    if (needs.open) return true;
    if (needs.scopes === undefined) {
      // Fail closed: a route someone forgot to mark is served to nobody (a test checks none is).
      throw new Error(
        `${context.getClass().name}.${context.getHandler().name} has neither @Public() nor @Scopes()`,
      );
    }
    // A refusal (401) is counted by the rate limiter against the caller's address, as anonymous
    // traffic, on its way out (ErrorMeter, libs/http).
    await super.canActivate(context);
    const principal = context
      .switchToHttp()
      .getRequest<FastifyRequest & { user: Principal }>().user;
    if (principal.kind === 'apiKey') this.checkApiKey(principal, needs.scopes, needs.noApiKeys);
    if (needs.admin && !(await this.adminRoles.isAdmin(principal.userId))) {
      throw new ApiException('FORBIDDEN', 'This route is for administrators.');
    }
    return true;
  }

  private checkApiKey(key: ApiKeyPrincipal, scopes: readonly Scope[], noApiKeys: boolean): void {
    if (noApiKeys) {
      throw new ApiException(
        'FORBIDDEN',
        "This route takes a signed-in user's access token, not an API key.",
      );
    }
    const missing = scopes.filter((scope) => !key.scopes.includes(scope));
    if (missing.length > 0) {
      throw new ApiException(
        'INSUFFICIENT_SCOPE',
        `This API key lacks the scope${missing.length > 1 ? 's' : ''} ${missing.join(', ')}.`,
      );
    }
  }

  private requirementsOf(context: ExecutionContext): Requirements {
    const handler = context.getHandler();
    let needs = this.requirements.get(handler);
    if (needs === undefined) {
      const targets = [handler, context.getClass()];
      const scopes = this.reflector.getAllAndOverride<Scope[] | undefined>(
        REQUIRED_SCOPES,
        targets,
      );
      needs = {
        open: this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, targets) === true,
        scopes,
        admin: scopes?.includes('admin') === true,
        noApiKeys:
          this.reflector.getAllAndOverride<boolean | undefined>(NO_API_KEYS, targets) === true,
      };
      this.requirements.set(handler, needs);
    }
    return needs;
  }

  /**
   * Passport decorates the object it authenticates with half a dozen properties (logIn, logOut,
   * authInfo, ...). Handing it a stand-in with the headers keeps Fastify's request objects in their
   * one shape, which the benchmark showed is worth it; the user is put on the request below.
   */
  override getRequest(context: ExecutionContext): { headers: FastifyRequest['headers'] } {
    return { headers: context.switchToHttp().getRequest<FastifyRequest>().headers };
  }

  /**
   * With two strategies, passport reports each one's failure (`missing`: no such credential
   * sent; `invalid`), in order: [jwt, api-key]. Every failure is a 401 that says which
   * credential was wrong, never why.
   */
  override handleRequest<TUser>(
    error: unknown,
    user: TUser | false,
    info: unknown,
    context: ExecutionContext,
  ): TUser {
    if (error instanceof Error) throw error;
    if (error) throw new Error('Authentication failed with a non-Error value');
    if (user) {
      context.switchToHttp().getRequest<FastifyRequest & { user: unknown }>().user = user;
      return user;
    }
    const [token, key] = (Array.isArray(info) ? info : [info]) as Challenge[];
    if (token === 'invalid') {
      throw new ApiException(
        'UNAUTHENTICATED',
        'The access token is invalid or has expired.',
        undefined,
        { 'www-authenticate': 'Bearer error="invalid_token"' },
      );
    }
    if (key === 'invalid') {
      throw new ApiException(
        'UNAUTHENTICATED',
        'The API key is invalid, expired or revoked.',
        undefined,
        { 'www-authenticate': 'ApiKey' },
      );
    }
    throw new ApiException(
      'UNAUTHENTICATED',
      'Send an access token as "Authorization: Bearer <token>", or an API key as "X-API-Key".',
      undefined,
      { 'www-authenticate': 'Bearer' },
    );
  }
}
