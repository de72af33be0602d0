import { UserEntity } from '@app/database';
import { ApiException } from '@app/http';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { UNIQUE_VIOLATION, sqlState } from '../common/owned-rows';

const normalizeEmail = (email: string): string => email.trim().toLowerCase();

@Injectable()
export class UsersService {
  constructor(@InjectRepository(UserEntity) private readonly users: Repository<UserEntity>) {}

  findById(id: string): Promise<UserEntity | null> {
    return this.users.findOneBy({ id });
  }

  /** With the password hash, which is otherwise never selected. */
  findByEmailWithPassword(email: string): Promise<UserEntity | null> {
    return this.users
      .createQueryBuilder('u')
      .addSelect('u.passwordHash')
      .where('u.email = :email', { email: normalizeEmail(email) })
      .getOne();
  }

  async create(input: { email: string; name: string; passwordHash: string }): Promise<UserEntity> {
    try {
      const user = this.users.create({
        email: normalizeEmail(input.email),
        name: input.name.trim(),
        passwordHash: input.passwordHash,
      });
      return await this.users.save(user);
    } catch (error) {
      if (sqlState(error) === UNIQUE_VIOLATION) {
        throw new ApiException('EMAIL_TAKEN', 'An account with this email already exists.');
      }
      throw error;
    }
  }
}
