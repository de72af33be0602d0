import { Injectable } from '@nestjs/common';

/** The RabbitMQ consumer's connection, as the RMQ transport reports it. */
@Injectable()
export class ConsumerStatus {
  private status = 'disconnected';

  get connected(): boolean {
    return this.status === 'connected';
  }

  get current(): string {
    return this.status;
  }

  set(status: string): void {
    this.status = status;
  }
}
