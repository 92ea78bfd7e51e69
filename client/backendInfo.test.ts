import { describe, expect, it } from 'vitest';
import { softwareRenderer } from './backendInfo.ts';

const adapter = (over: Partial<{ vendor: string; architecture: string; device: string; description: string; fallback: boolean }>) => ({ vendor: '', architecture: '', device: '', description: '', ...over });

describe('softwareRenderer', () => {
  it('names the software renderers that adapters report', () => {
    // What headless Chromium reports for SwiftShader.
    expect(softwareRenderer(adapter({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader Device (Subzero)' }))).toBe('SwiftShader');
    expect(softwareRenderer(adapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }))).toBe('llvmpipe');
    expect(softwareRenderer(adapter({ description: 'Microsoft Basic Render Driver' }))).toBe('WARP');
    expect(softwareRenderer(adapter({ architecture: 'warp' }))).toBe('WARP');
    expect(softwareRenderer(adapter({ vendor: 'mesa', device: 'lavapipe' }))).toBe('lavapipe');
  });

  it('trusts the browser’s fallback flag when the names say nothing', () => {
    expect(softwareRenderer(adapter({ vendor: 'unknown', fallback: true }))).toBe('a software renderer');
  });

  it('leaves real graphics cards alone', () => {
    expect(softwareRenderer(adapter({ vendor: 'nvidia', architecture: 'ampere', description: 'NVIDIA GeForce RTX 3060' }))).toBeUndefined();
    expect(softwareRenderer(adapter({ vendor: 'apple', architecture: 'metal-3' }))).toBeUndefined();
    // "hardware" contains "war" but is not WARP.
    expect(softwareRenderer(adapter({ vendor: 'intel', description: 'Intel hardware adapter' }))).toBeUndefined();
    expect(softwareRenderer(undefined)).toBeUndefined();
  });
});
