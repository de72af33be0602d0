export { AccessTokenService, CLOCK_TOLERANCE_SECONDS, JWT_ALGORITHM } from './access-token.service';
export type { AccessTokenClaims } from './access-token.service';
export { AuthModule } from './auth.module';
export { CurrentPrincipal } from './current-principal.decorator';
export { hashForUnknownUser, hashPassword, verifyPassword } from './password-hasher';
export type { Principal } from './principal';
export { IS_PUBLIC, Public } from './public.decorator';
