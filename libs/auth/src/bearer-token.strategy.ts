import type { IncomingMessage } from 'node:http';
import { Strategy } from 'passport-strategy';

type Verified = (error: Error | null, user?: unknown) => void;
type Verify = (token: string, done: Verified) => void;

/**
 * A passport strategy for `Authorization: Bearer <token>` that reads the header only. (The
 * common bearer strategy also takes `?access_token=` from the URL, where tokens end up in
 * proxy and access logs.) `verify` decides what the token is worth.
 */
export class BearerTokenStrategy extends Strategy {
  name = 'bearer';

  constructor(private readonly verify: Verify) {
    super();
  }

  override authenticate(request: IncomingMessage): void {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || !/^Bearer /i.test(header)) {
      this.fail('missing', 401);
      return;
    }
    this.verify(header.slice(7).trim(), (error, user) => {
      if (error) this.error(error);
      else if (user) this.success(user);
      else this.fail('invalid', 401);
    });
  }
}
