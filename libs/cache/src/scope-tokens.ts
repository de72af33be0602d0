import type { Token } from './generations';

/**
 * The generation tokens this instance knows, by scope: at most `max` (the oldest set goes first),
 * and an instance-only token (`l…`) forgotten `localTtlMs` after it was set.
 *
 * A Map rather than lru-cache: lru-cache preallocates arrays of `max` slots and refills all of them
 * whenever its last entry is deleted. A write deletes its scope's token two or three times, and
 * with one scope known (one busy user, the benchmark's case) every delete was such a refill:
 * ~320 µs each at 100 000 slots, over 1.5 ms of CPU per write. Here every operation is O(1).
 */
export class ScopeTokens {
  private readonly tokens = new Map<string, Token>();
  /** When each instance-only token stops counting, by scope (ms, Date.now()). */
  private readonly localUntil = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly localTtlMs: number,
  ) {}

  get(scope: string): Token | undefined {
    const token = this.tokens.get(scope);
    if (token === undefined || token[0] !== 'l') return token;
    if (Date.now() < (this.localUntil.get(scope) ?? 0)) return token;
    this.delete(scope);
    return undefined;
  }

  has(scope: string): boolean {
    return this.get(scope) !== undefined;
  }

  set(scope: string, token: Token): void {
    this.tokens.delete(scope);
    if (token[0] === 'l') this.localUntil.set(scope, Date.now() + this.localTtlMs);
    else this.localUntil.delete(scope);
    this.tokens.set(scope, token);
    if (this.tokens.size > this.max) {
      const oldest = this.tokens.keys().next().value as string;
      this.delete(oldest);
    }
  }

  delete(scope: string): void {
    this.tokens.delete(scope);
    this.localUntil.delete(scope);
  }

  clear(): void {
    this.tokens.clear();
    this.localUntil.clear();
  }

  get size(): number {
    return this.tokens.size;
  }
}
