/**
 * Fetches Fashion-MNIST into the cache: `apt-get download
 * dataset-fashion-mnist` (the .deb, 31 MB, no system install and no root
 * needed) and `dpkg -x` to unpack its four IDX .gz files. Node-only; run
 * it as `node --import tsx peer/data/fetch-fashion-mnist.ts`.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { topkError } from '../../shared/errors.ts';
import { cacheDir } from './cache.ts';
import { fashionMnistCacheFolder } from './fashion-mnist.ts';
import { IDX_FILES } from './images.ts';

const run = promisify(execFile);

/** The Debian package that holds the data set. */
export const FASHION_MNIST_PACKAGE = 'dataset-fashion-mnist';

/** Where the package keeps the files, inside the unpacked tree. */
const PACKAGE_FOLDER = 'usr/share/datasets/fashion-mnist';

/** Runs `command args` in `cwd`; failures become ERR_MISSING_DEPENDENCY. */
async function step(
  command: string,
  args: string[],
  cwd: string,
): Promise<void> {
  try {
    await run(command, args, { cwd, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const detail = error as { code?: unknown; stderr?: unknown };
    const reason =
      detail.code === 'ENOENT'
        ? `${command} is not on this system (a Debian or Ubuntu machine ` +
          'has it)'
        : String(detail.stderr ?? error)
            .trim()
            .slice(-400);
    throw topkError(
      'ERR_MISSING_DEPENDENCY',
      `fetching fashion-mnist failed at \`${command} ${args.join(' ')}\`: ` +
        reason,
      { command, args },
      error,
    );
  }
}

/**
 * Downloads and unpacks the data set into `<cache>/fashion-mnist`;
 * resolves to that folder. Safe to run again: the files are replaced.
 */
export async function fetchFashionMnist(cache = cacheDir()): Promise<string> {
  const target = fashionMnistCacheFolder(cache);
  await mkdir(cache, { recursive: true });
  const work = await mkdtemp(join(cache, 'fetch-'));
  try {
    await step('apt-get', ['download', FASHION_MNIST_PACKAGE], work);
    const debs = (await readdir(work)).filter((f) => f.endsWith('.deb'));
    if (debs.length !== 1) {
      throw topkError(
        'ERR_MISSING_DEPENDENCY',
        `apt-get download left ${debs.length} .deb files, expected 1`,
        { files: debs },
      );
    }
    await step('dpkg', ['-x', debs[0], 'tree'], work);
    await mkdir(target, { recursive: true });
    for (const file of Object.values(IDX_FILES)) {
      await rename(
        join(work, 'tree', PACKAGE_FOLDER, `${file}.gz`),
        join(target, `${file}.gz`),
      );
    }
    return target;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// Run as a script: fetch, then say where the files went.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    const folder = await fetchFashionMnist();
    process.stdout.write(`fashion-mnist is in ${folder}\n`);
  } catch (error) {
    process.stderr.write(
      `${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  }
}
