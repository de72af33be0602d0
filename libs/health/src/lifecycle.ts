import { Injectable } from '@nestjs/common';

/** Whether this instance is draining: readiness answers 503 from the moment SIGTERM arrives. */
@Injectable()
export class Lifecycle {
  private isDraining = false;

  get draining(): boolean {
    return this.isDraining;
  }

  startDraining(): void {
    this.isDraining = true;
  }
}
