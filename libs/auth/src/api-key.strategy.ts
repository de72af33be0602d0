import { ApiException } from '@app/http';
import { Injectable, Logger } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { IncomingMessage } from 'node:http';
import { Strategy } from 'passport-strategy';
import { ApiKeyVerifier } from './api-key-verifier';
import type { ApiKeyPrincipal } from './principal';

type Verified = (error: Error | null, principal?: unknown) => void;

/** A passport strategy for `X-API-Key: <key>`; `verify` decides what the key is worth. */
class ApiKeyHeaderStrategy extends Strategy {
  name = 'api-key';

  constructor(private readonly verify: (key: string, done: Verified) => void) {
    super();
  }

  override authenticate(request: IncomingMessage): void {
    const key = request.headers['x-api-key'];
    if (typeof key !== 'string' || key === '') {
      this.fail('missing', 401);
      return;
    }
    this.verify(key, (error, principal) => {
      if (error) this.error(error);
      else if (principal) this.success(principal);
      else this.fail('invalid', 401);
    });
  }
}

/** API keys (`X-API-Key: thk_...`), through passport. */
@Injectable()
export class ApiKeyStrategy extends PassportStrategy(ApiKeyHeaderStrategy, 'api-key') {
  private readonly logger = new Logger(ApiKeyStrategy.name);

  constructor(private readonly verifier: ApiKeyVerifier) {
    super();
  }

  async validate(key: string): Promise<ApiKeyPrincipal | false> {
    try {
      return (await this.verifier.verify(key)) ?? false;
    } catch (error) {
      // The database did not answer (its timeouts bound the wait): not the caller's fault.
      this.logger.error(`API key check failed: ${String(error)}`);
      throw new ApiException(
        'SERVICE_UNAVAILABLE',
        'The API key could not be checked just now; retry shortly.',
        undefined,
        { 'retry-after': '1' },
      );
    }
  }
}
