import type { ImportItem } from '../api.ts';

/**
 * Turn what the user dropped or picked into (path, file) pairs for the worker. Files are Blobs: handing
 * them to the worker copies a reference, not the bytes; reading and decoding happen there.
 *
 * - Drag and drop: folders are walked with webkitGetAsEntry (readEntries returns at most ~100 entries
 *   per call, so it is called until it returns none), yielding between directories so the page stays
 *   responsive with thousands of files.
 * - File inputs: `webkitRelativePath` (folder picker) or the bare name (files, ZIPs).
 */

export function itemsFromFileList(files: FileList | readonly File[]): ImportItem[] {
  const out: ImportItem[] = [];
  for (const f of Array.from(files)) out.push({ path: f.webkitRelativePath || f.name, file: f });
  return out;
}

function readAllEntries(dir: FileSystemDirectoryEntry): Promise<FileSystemEntry[]> {
  const reader = dir.createReader();
  const all: FileSystemEntry[] = [];
  return new Promise((resolve, reject) => {
    const next = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) return resolve(all);
        all.push(...batch);
        next();
      }, reject);
    next();
  });
}

function fileOf(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

const yieldToPage = () => new Promise<void>((r) => setTimeout(r, 0));

/** Collect every file of a drop, walking dropped folders. `onCount` reports how many were found so far. */
export async function itemsFromDataTransfer(dt: DataTransfer, onCount?: (n: number) => void): Promise<ImportItem[]> {
  // Entries must be taken synchronously, before the first await (the DataTransfer is emptied after the event).
  const entries: FileSystemEntry[] = [];
  const loose: File[] = [];
  for (const item of Array.from(dt.items)) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry?.();
    if (entry) entries.push(entry);
    else {
      const f = item.getAsFile();
      if (f) loose.push(f);
    }
  }
  const out: ImportItem[] = itemsFromFileList(loose);
  const stack: { entry: FileSystemEntry; prefix: string }[] = entries.map((entry) => ({ entry, prefix: '' }));
  let sinceYield = 0;
  while (stack.length) {
    const { entry, prefix } = stack.pop()!;
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isFile) {
      out.push({ path, file: await fileOf(entry as FileSystemFileEntry) });
      if (++sinceYield >= 200) {
        sinceYield = 0;
        onCount?.(out.length);
        await yieldToPage();
      }
    } else if (entry.isDirectory) {
      for (const child of await readAllEntries(entry as FileSystemDirectoryEntry)) stack.push({ entry: child, prefix: path });
    }
  }
  onCount?.(out.length);
  return out;
}
