// What a new password must be: at least 12 characters (NIST SP 800-63B: length over composition rules),
// at most 1024, not the user name, not one character or a short pattern repeated, and not on the list
// of common passwords shipped with the box (common-passwords.ts).
import { EdgeError } from '../core/errors.ts';
import { CommonPasswords } from './common-passwords.ts';

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 1024;

const common = new Set(CommonPasswords);

/** Why `password` is refused, or undefined when it may be used. Never echoes the password. */
export function passwordProblem(password: string, username: string): string | undefined {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) return `a password has at least ${MIN_PASSWORD_LENGTH} characters`;
  if (length > MAX_PASSWORD_LENGTH) return `a password has at most ${MAX_PASSWORD_LENGTH} characters`;
  const lower = password.toLowerCase();
  if (lower.includes(username.toLowerCase())) return 'a password must not contain the user name';
  if (/^(.{1,4})\1+$/su.test(lower)) return 'a password must not be a short pattern repeated';
  if (/^\d+$/.test(lower) && isRun(lower)) return 'a password must not be a run of digits';
  const stem = lower.replace(/[\d\W_]+$/u, '').replace(/^[\d\W_]+/u, '');
  if (common.has(lower) || common.has(stem)) return 'this is a common password: choose another';
  return undefined;
}

export function checkPassword(password: unknown, username: string): string {
  if (typeof password !== 'string') throw new EdgeError('EDGE_CONTROL_BAD_REQUEST', 'the new password must be a string');
  const problem = passwordProblem(password, username);
  if (problem !== undefined) throw new EdgeError('EDGE_ACCESS_PASSWORD_POLICY', problem);
  return password;
}

function isRun(digits: string): boolean {
  for (let i = 1; i < digits.length; i++) {
    const d = (Number(digits[i]) - Number(digits[i - 1]) + 10) % 10;
    if (d !== 1 && d !== 9) return false;
  }
  return true;
}
