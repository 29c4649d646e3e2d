// Operator wording for files the process may not read: which file, as whom, and what to change. The
// check runs as the user edged runs as when edged checks its own config at start; `edgectl config check`
// run by another user (root) says so, since root reads what the daemon's user may not.
import { accessSync, closeSync, constants, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';

export function currentUser(): string {
  try {
    const u = userInfo();
    return `${u.username} (uid ${u.uid})`;
  } catch {
    return `uid ${process.getuid?.() ?? 'unknown'}`;
  }
}

export function unreadableFileMessage(absolute: string): string {
  return (
    `permission denied: ${absolute} cannot be read by user ${currentUser()}, the user this check runs as; ` +
    'edged must run as a user who can read it: give that user read access to the file and search (x) access ' +
    'to every folder above it (e.g. chown edge:edge FILE && chmod 600 FILE on the appliance)'
  );
}

/** Kernel file systems: nothing there stores data, and some hang a recursive mkdir (seen under /proc). */
export const pseudoFileSystems = ['/proc', '/sys', '/dev'] as const;

function isUnder(path: string, root: string): boolean {
  return path === root || path.startsWith(`${root}/`);
}

/** The real path of `absolute`, resolving links in the part of it that exists. */
function realLocation(absolute: string): string {
  let existing = absolute;
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(existing), ...rest);
    } catch {
      const parent = dirname(existing);
      if (parent === existing) return absolute;
      rest.unshift(basename(existing));
      existing = parent;
    }
  }
}

/** For dataDir and the spool folder: refuses kernel file systems, also behind a symbolic link. */
export function dataLocationProblem(absolute: string, resolveLinks: boolean): string | undefined {
  const real = resolveLinks ? realLocation(absolute) : absolute;
  const root = pseudoFileSystems.find((r) => isUnder(absolute, r) || isUnder(real, r));
  if (root === undefined) return undefined;
  const via = real === absolute ? '' : ` (it resolves to ${real})`;
  return `${absolute}${via} is under ${root}, a kernel file system that cannot hold data; use a folder on a disk, e.g. /var/lib/imaging-edge`;
}

/** The file's bytes, or undefined when it is larger than `maxBytes` (not read then); throws errno errors. */
export function readFileUpTo(path: string, maxBytes: number): Buffer | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > maxBytes) return undefined;
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/**
 * Why the daemon could not create (or use) the folder `absolute` at start, or undefined: the folder, or the
 * nearest part of its path that exists, must be a folder this user may write into.
 */
export function uncreatableFolderProblem(absolute: string): { readonly permission: boolean; readonly message: string } | undefined {
  let existing = absolute;
  for (;;) {
    try {
      if (!statSync(existing).isDirectory()) {
        return {
          permission: false,
          message: existing === absolute ? `${absolute} is not a folder` : `${existing} is not a folder, so ${absolute} cannot be created`,
        };
      }
      break;
    } catch {
      const parent = dirname(existing);
      if (parent === existing) return undefined;
      existing = parent;
    }
  }
  try {
    accessSync(existing, constants.W_OK | constants.X_OK);
  } catch {
    const what = existing === absolute ? absolute : `${existing} (where ${absolute} would be created)`;
    return {
      permission: true,
      message: `permission denied: user ${currentUser()}, the user this check runs as, cannot write into ${what}; edged must run as a user who can`,
    };
  }
  return undefined;
}
