import { describe, expect, it } from 'vitest';
import { fixedSubgroupSize, hoistDirectives, installDirectiveHoisting } from './webgpuDevice.ts';

describe('WGSL directive hoisting', () => {
  it('moves enable, requires and global diagnostic directives before the prelude, each once, in order', () => {
    const code = [
      'struct Uniforms { a : f32, };',
      'var<private> localId : vec3<u32>;',
      '      enable subgroups;',
      'fn f() -> f32 { return 1.0; }',
      'requires readonly_and_readwrite_storage_textures;',
      'enable f16, subgroups;',
      'diagnostic(off, subgroup_uniformity);',
      '  enable   subgroups ;',
      '@diagnostic(off, derivative_uniformity) fn g() {}',
      '// enable nothing; (a comment stays)',
    ].join('\n');
    expect(hoistDirectives(code).split('\n')).toEqual([
      'enable subgroups;',
      'requires readonly_and_readwrite_storage_textures;',
      'enable f16, subgroups;',
      'diagnostic(off, subgroup_uniformity);',
      'struct Uniforms { a : f32, };',
      'var<private> localId : vec3<u32>;',
      'fn f() -> f32 { return 1.0; }',
      '@diagnostic(off, derivative_uniformity) fn g() {}',
      '// enable nothing; (a comment stays)',
    ]);
  });

  it('leaves code without directives unchanged, and identifiers that merely start with a keyword', () => {
    const code = 'var<private> enabled : i32;\nfn main() { let requiresX = 1; enabled = requiresX; }\n';
    expect(hoistDirectives(code)).toBe(code);
  });

  it('wraps createShaderModule on the device and unwraps it', () => {
    const seen: string[] = [];
    const proto = { createShaderModule(d: { code: string }) { seen.push(d.code); return {}; } };
    const device = Object.create(proto) as GPUDevice;
    const undo = installDirectiveHoisting(device);
    expect(Object.prototype.hasOwnProperty.call(device, 'createShaderModule')).toBe(true);
    device.createShaderModule({ code: 'var<private> a : f32;\nenable subgroups;', label: 'x' });
    expect(seen).toEqual(['enable subgroups;\nvar<private> a : f32;']);
    undo();
    expect(Object.prototype.hasOwnProperty.call(device, 'createShaderModule')).toBe(false);
    device.createShaderModule({ code: 'var<private> a : f32;\nenable subgroups;' });
    expect(seen[1]).toBe('var<private> a : f32;\nenable subgroups;');
  });
});

describe('subgroup feature check', () => {
  const dev = (features: string[], info?: { subgroupMinSize?: number; subgroupMaxSize?: number }) => ({ features: new Set(features), adapterInfo: info }) as unknown as GPUDevice;
  it('needs the subgroups feature on the device and a fixed subgroup size', () => {
    expect(fixedSubgroupSize(dev(['subgroups'], { subgroupMinSize: 32, subgroupMaxSize: 32 }))).toBe(32);
    expect(fixedSubgroupSize(dev(['subgroups'], { subgroupMinSize: 4, subgroupMaxSize: 4 }))).toBe(4);
    expect(fixedSubgroupSize(dev(['subgroups'], { subgroupMinSize: 32, subgroupMaxSize: 64 }))).toBe(0);
    expect(fixedSubgroupSize(dev(['timestamp-query'], { subgroupMinSize: 32, subgroupMaxSize: 32 }))).toBe(0);
    expect(fixedSubgroupSize(dev(['subgroups']))).toBe(0);
  });
});
