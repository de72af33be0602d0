export { AccessTokenService } from './access-token.service';
export { AuthModule } from './auth.module';
export { CurrentPrincipal } from './current-principal.decorator';
export { hashForUnknownUser, hashPassword, verifyPassword } from './password-hasher';
export type { Principal } from './principal';
export { Public } from './public.decorator';
