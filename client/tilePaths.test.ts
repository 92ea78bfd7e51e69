import { describe, expect, it } from 'vitest';
import { classifyPath, isSystemFile } from './tilePaths.ts';

const CLASSES = ['MSIH', 'nonMSIH'];

describe('classifyPath', () => {
  it('takes the class from the innermost folder named like a class, case-insensitively', () => {
    expect(classifyPath('MSIH/a.png', CLASSES)).toEqual({ kind: 'tile', label: 'MSIH' });
    expect(classifyPath('crc/train/nonmsih/b.JPG', CLASSES)).toEqual({ kind: 'tile', label: 'nonMSIH' });
    expect(classifyPath('MSIH/review/nonMSIH/c.jpeg', CLASSES)).toEqual({ kind: 'tile', label: 'nonMSIH' });
    expect(classifyPath('nonMSIH\\sub\\d.webp', CLASSES)).toEqual({ kind: 'tile', label: 'nonMSIH' });
  });

  it('names the unknown class folder and the federation classes', () => {
    const v = classifyPath('tiles/Stroma/x.png', CLASSES);
    expect(v.kind).toBe('rejected');
    expect(v.kind === 'rejected' && v.reason).toBe('unknown class folder "Stroma": this federation\'s classes are "MSIH", "nonMSIH"');
  });

  it('refuses loose files unless a class for them is chosen', () => {
    const v = classifyPath('x.png', CLASSES);
    expect(v.kind === 'rejected' && v.reason).toMatch(/^not in a class folder/);
    expect(classifyPath('x.png', CLASSES, 'nonMSIH')).toEqual({ kind: 'tile', label: 'nonMSIH' });
    expect(classifyPath('x.png', CLASSES, 'Stroma').kind).toBe('rejected');
  });

  it('says why non-images are refused, and recognises ZIPs and system files', () => {
    expect(classifyPath('MSIH/notes.txt', CLASSES)).toEqual({ kind: 'rejected', reason: 'not an image (.txt file)' });
    expect(classifyPath('MSIH/README', CLASSES)).toEqual({ kind: 'rejected', reason: 'not an image (the file has no extension)' });
    expect(classifyPath('MSIH/scan.tiff', CLASSES)).toEqual({ kind: 'rejected', reason: 'TIFF images cannot be read by the browser: convert them to PNG or JPEG' });
    expect(classifyPath('export/Tiles.ZIP', CLASSES)).toEqual({ kind: 'zip' });
    expect(classifyPath('MSIH/.DS_Store', CLASSES)).toEqual({ kind: 'system' });
    expect(classifyPath('__MACOSX/MSIH/._a.png', CLASSES)).toEqual({ kind: 'system' });
    expect(isSystemFile('MSIH/Thumbs.db')).toBe(true);
    expect(isSystemFile('MSIH/a.png')).toBe(false);
  });
});
