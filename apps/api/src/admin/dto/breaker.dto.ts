import type { BreakerSnapshot, BreakerState } from '@app/resilience';
import { ApiProperty } from '@nestjs/swagger';

class BreakerWindowDto {
  @ApiProperty({ type: 'integer' }) calls!: number;
  @ApiProperty({ type: 'integer' }) successes!: number;
  @ApiProperty({ type: 'integer' }) failures!: number;
  @ApiProperty({ type: 'integer' }) timeouts!: number;
  @ApiProperty({
    type: 'integer',
    description: 'Calls refused at once while the breaker was open.',
  })
  rejects!: number;
}

export class BreakerDto implements BreakerSnapshot {
  @ApiProperty({
    example: 'postgres',
    description: '`postgres`, `redis`, `rabbitmq`, `webhook:<host>`',
  })
  name!: string;
  @ApiProperty({ enum: ['closed', 'half-open', 'open'] }) state!: BreakerState;
  @ApiProperty({
    type: 'integer',
    description: 'How long a call may take before it counts as a failure.',
  })
  timeoutMs!: number;
  @ApiProperty({ type: BreakerWindowDto, description: 'Counts over the rolling window.' })
  window!: BreakerWindowDto;
}

export class BreakerListDto {
  @ApiProperty({ type: [BreakerDto] }) data!: BreakerDto[];
}
