import { ExecutionContext, createParamDecorator } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Principal } from './principal';

/** The authenticated caller. Only on routes behind the auth guard (all but @Public() ones). */
export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Principal => {
    const request = context.switchToHttp().getRequest<FastifyRequest & { user?: Principal }>();
    if (!request.user) throw new Error('@CurrentPrincipal() used on a public route');
    return request.user;
  },
);
