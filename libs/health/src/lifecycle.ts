import { Injectable } from '@nestjs/common';

/** Whether this instance is draining: readiness answers 503 from the moment SIGTERM arrives. */
@Injectable()
export class Lifecycle {
  private drainingSince: Date | undefined;

  get draining(): boolean {
    return this.drainingSince !== undefined;
  }

  startDraining(): void {
    this.drainingSince ??= new Date();
  }
}
