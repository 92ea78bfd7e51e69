import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initNodeBackend } from './nodeBackend.ts';

describe('initNodeBackend with DAWN_NODE', () => {
  it('fails with the reason when WebGPU does not start through Dawn, instead of training on the CPU', async () => {
    // A stand-in for dawn.node whose GPU has no adapter, as Dawn without a Vulkan driver answers.
    const dir = mkdtempSync(join(tmpdir(), 'dawn-'));
    const fake = join(dir, 'dawn.cjs');
    writeFileSync(fake, 'module.exports = { globals: {}, create: () => ({ requestAdapter: async () => null }) };\n');
    await expect(initNodeBackend({ DAWN_NODE: fake })).rejects.toThrow(
      new RegExp(`^DAWN_NODE is set \\(${fake.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\) but WebGPU did not start through it: .+ Check the GPU driver and the Vulkan loader \\(libvulkan\\.so\\.1\\), or unset DAWN_NODE to train on the CPU$`),
    );
  });
});
