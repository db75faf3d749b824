import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

// Real storage faults for the database, made with the kernel instead of mocks. chmod cannot stop root (tests run
// as root here), and neither `chattr +i` nor a read-only remount stop writes through a file SQLite already holds
// open (tried: the first is ignored by open descriptors, the second fails with EBUSY). What does work:
// - disk full: the database on a small tmpfs, filled with a filler file until ENOSPC (SQLITE_FULL);
// - a disk that turns read-only under the service: the database on an ext4 image on a loop device, mounted
//   errors=remount-ro, then an ext4 error raised through /sys/fs/ext4/<dev>/trigger_fs_error. The kernel
//   aborts the journal and remounts read-only, exactly as after a real I/O error (SQLITE_IOERR_WRITE). Repair is
//   what an operator does: stop, unmount, e2fsck, mount, start.
// Both need root and mount(2); `storageFaultsAvailable()` says whether this machine allows them.

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();

export interface Probe {
  tmpfs: boolean;
  ext4: boolean;
  why: string[];
}

/** Tries each mechanism once on a scratch mount. */
export function probeStorageFaults(): Probe {
  const why: string[] = [];
  const probe = (name: string, f: () => void) => {
    try {
      f();
      return true;
    } catch (err) {
      why.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
      return false;
    }
  };
  const tmpfs = probe('tmpfs', () => {
    const m = mountTmpfs(64 * 1024);
    m.unmount();
  });
  const ext4 = probe('ext4 on loop', () => {
    const m = mountExt4(8);
    if (!m.canFail()) throw new Error('no /sys/fs/ext4/<dev>/trigger_fs_error');
    m.unmount();
  });
  return { tmpfs, ext4, why };
}

function unmount(dir: string): void {
  try {
    run('umount', [dir]);
  } catch {
    // Still busy (a test failed with the database open): detach it now, the kernel frees it when released.
    run('umount', ['-l', dir]);
  }
}

export interface TmpfsMount {
  dir: string;
  /** Writes a filler file until the filesystem is full; returns the bytes left free (< one page). */
  fill(): number;
  /** Deletes the filler: the disk has room again. */
  free(): void;
  unmount(): void;
}

/** A tmpfs of `bytes` bytes on a fresh temp directory. */
export function mountTmpfs(bytes: number): TmpfsMount {
  const dir = mkdtempSync(join(tmpdir(), 'changepager-tmpfs-'));
  try {
    run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'changepager-test', dir]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const filler = join(dir, 'filler');
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      const chunk = Buffer.alloc(64 * 1024);
      try {
        for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
          for (;;) {
            try {
              writeSync(fd, chunk, 0, size);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
              throw err;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      unmount(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Ext4Mount {
  dir: string;
  /** Whether this kernel exposes trigger_fs_error for the device. */
  canFail(): boolean;
  /** Raises an ext4 error: the kernel aborts the journal and remounts the filesystem read-only. */
  fail(): void;
  readOnly(): boolean;
  /** What an operator does after the error: unmount, e2fsck -fy, mount again (the database must be closed). */
  repair(): void;
  unmount(): void;
}

/** An ext4 filesystem of `megabytes` MiB in an image file, loop-mounted with errors=remount-ro. */
export function mountExt4(megabytes: number): Ext4Mount {
  const home = mkdtempSync(join(tmpdir(), 'changepager-ext4-'));
  const image = join(home, 'disk.img');
  const dir = join(home, 'mnt');
  mkdirSync(dir);
  const mount = () => run('mount', ['-o', 'loop,errors=remount-ro', image, dir]);
  try {
    run('truncate', ['-s', `${megabytes}M`, image]);
    run('mkfs.ext4', ['-q', '-F', image]);
    mount();
  } catch (err) {
    rmSync(home, { recursive: true, force: true });
    throw err;
  }
  const sysfs = () => {
    const dev = run('findmnt', ['-n', '-o', 'SOURCE', dir]).trim();
    return `/sys/fs/ext4/${basename(dev)}/trigger_fs_error`;
  };
  const options = () => run('findmnt', ['-n', '-o', 'OPTIONS', dir]).trim().split(',');
  return {
    dir,
    canFail() {
      try {
        statfsSync(sysfs());
        return true;
      } catch {
        return false;
      }
    },
    fail() {
      const fd = openSync(sysfs(), 'w');
      try {
        writeSync(fd, 'changepager test: simulated disk error');
      } finally {
        closeSync(fd);
      }
    },
    readOnly: () => options().includes('ro') || options().includes('emergency_ro'),
    repair() {
      unmount(dir);
      try {
        run('e2fsck', ['-f', '-y', image]);
      } catch (err) {
        // Exit 1 means "errors corrected": the expected outcome after a simulated error.
        if ((err as { status?: number }).status !== 1) throw err;
      }
      mount();
    },
    unmount() {
      try {
        unmount(dir);
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    },
  };
}
