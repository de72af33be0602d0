import { Injectable } from '@nestjs/common';

/** Each queue consumer's connection, as the RMQ transport reports it. */
@Injectable()
export class ConsumerStatus {
  private readonly statuses = new Map<string, string>();

  /** Every consumer registered is connected. */
  get connected(): boolean {
    return (
      this.statuses.size > 0 &&
      [...this.statuses.values()].every((status) => status === 'connected')
    );
  }

  /** `{ queue: status }`, for the readiness body. */
  get current(): Record<string, string> {
    return Object.fromEntries(this.statuses);
  }

  set(queue: string, status: string): void {
    this.statuses.set(queue, status);
  }
}
