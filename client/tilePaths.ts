/**
 * What a dropped file is, judged from its path alone: a tile of a known class, a ZIP to open, a file the
 * operating system left behind (ignored silently), or something refused with a reason staff can act on.
 * Pure and isomorphic, so it is unit-tested in Node.
 */

export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'webp', 'bmp', 'gif'] as const;

export type PathVerdict =
  | { kind: 'tile'; label: string }
  | { kind: 'zip' }
  | { kind: 'system' }
  | { kind: 'rejected'; reason: string };

/** Split a path on / and \, dropping empty parts and `.`. */
export function pathParts(path: string): string[] {
  return path.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
}

export function extensionOf(name: string): string {
  const i = name.lastIndexOf('.');
  return i > 0 ? name.slice(i + 1).toLowerCase() : '';
}

const SYSTEM_NAMES = new Set(['.ds_store', 'thumbs.db', 'desktop.ini']);

/** Files that operating systems and archivers create on their own (not the user's data). */
export function isSystemFile(path: string): boolean {
  const parts = pathParts(path);
  const name = (parts[parts.length - 1] ?? '').toLowerCase();
  return parts.some((p) => p === '__MACOSX') || SYSTEM_NAMES.has(name) || name.startsWith('._');
}

/**
 * Classify one file by its path. The class is the innermost folder whose name is one of `classes`
 * (case-insensitive, returned as the config spells it); `looseClass`, when given, labels files that sit
 * in no folder at all (picked one by one).
 */
export function classifyPath(path: string, classes: readonly string[], looseClass?: string): PathVerdict {
  if (isSystemFile(path)) return { kind: 'system' };
  const parts = pathParts(path);
  const name = parts[parts.length - 1] ?? '';
  const ext = extensionOf(name);
  if (ext === 'zip') return { kind: 'zip' };
  if (ext === 'tif' || ext === 'tiff') return { kind: 'rejected', reason: 'TIFF images cannot be read by the browser: convert them to PNG or JPEG' };
  if (!(IMAGE_EXTENSIONS as readonly string[]).includes(ext)) {
    return { kind: 'rejected', reason: ext ? `not an image (.${ext} file)` : 'not an image (the file has no extension)' };
  }
  const folders = parts.slice(0, -1);
  const byLower = new Map(classes.map((c) => [c.toLowerCase(), c]));
  for (let i = folders.length - 1; i >= 0; i--) {
    const c = byLower.get(folders[i].toLowerCase());
    if (c !== undefined) return { kind: 'tile', label: c };
  }
  if (folders.length === 0) {
    if (looseClass !== undefined && classes.includes(looseClass)) return { kind: 'tile', label: looseClass };
    return { kind: 'rejected', reason: `not in a class folder: put tiles in folders named ${classList(classes)}, or choose a class for individually picked files` };
  }
  return { kind: 'rejected', reason: `unknown class folder "${folders[folders.length - 1]}": this federation's classes are ${classList(classes)}` };
}

function classList(classes: readonly string[]): string {
  return classes.map((c) => `"${c}"`).join(', ');
}
