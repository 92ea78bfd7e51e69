export interface FastWebGPUOptions {
  seed?: number;
}
export interface FastWebGPU {
  disable(): void;
}
export function enableFastWebGPU(_opts: FastWebGPUOptions = {}): FastWebGPU {
  return { disable() {} };
}
