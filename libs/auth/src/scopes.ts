import { SetMetadata, applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiExtension, ApiSecurity } from '@nestjs/swagger';

/** What an API key can be allowed to do (CONTRACT §3). */
export const SCOPES = [
  'tasks:read',
  'tasks:write',
  'categories:read',
  'categories:write',
  'exports:write',
  'webhooks:read',
  'webhooks:write',
  'admin',
] as const;
export type Scope = (typeof SCOPES)[number];

/** Every scope but `admin`: what a signed-in user holds over their own resources. */
export const USER_SCOPES: readonly Scope[] = SCOPES.filter((scope) => scope !== 'admin');

export const REQUIRED_SCOPES = 'taskhub:scopes';
export const NO_API_KEYS = 'taskhub:noApiKeys';

/** The name of the API-key security scheme in the OpenAPI document. */
export const API_KEY_SECURITY = 'api-key';

/**
 * What a route needs, on every route that is not @Public() (the guard refuses to serve a route
 * that says neither): an API key must hold each scope (else 403); a signed-in user holds every
 * scope over their own data, and `admin` when their role is admin. `@Scopes()` with no scope: any
 * authenticated caller.
 */
export const Scopes = (...scopes: Scope[]): MethodDecorator & ClassDecorator =>
  applyDecorators(
    SetMetadata(REQUIRED_SCOPES, scopes),
    ApiBearerAuth(),
    ApiSecurity(API_KEY_SECURITY),
    ApiExtension('x-required-scopes', scopes),
  );

/**
 * A route for signed-in users only (an API key gets 403): managing API keys, so that a key can
 * never mint itself a broader one.
 */
export const NoApiKeys = (): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(NO_API_KEYS, true), ApiExtension('x-api-keys-refused', true));
