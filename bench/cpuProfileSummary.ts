/**
 * Self time per function from a V8 CPU profile (the `.cpuprofile` JSON that `node --cpu-prof`, the
 * inspector's Profiler domain and Chrome DevTools write).
 */
export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HostFunctionTime {
  name: string;
  selfMs: number;
  /** Share of the profile's busy (non-idle) time. */
  share: number;
}

const NOT_BUSY = new Set(['(idle)', '(program)', '(garbage collector)']);
/**
 * Waiting for the GPU in Node + Dawn: dawn.node keeps the event loop spinning through setImmediate while
 * a promise (mapAsync) is pending; those frames, and the anonymous native callback with no script,
 * are counted as waiting, not as host work.
 */
const WAITING = new Set(['processImmediate', 'setImmediate', 'toggleImmediateRef']);
/** Node's inspector serialising the profile when it is stopped (`dispatch`, native): not the workload. */
const PROFILER = new Set(['dispatch']);

export function summarizeCpuProfile(profile: CpuProfile, top = 15): { busyMs: number; totalMs: number; gcMs: number; waitMs: number; functions: HostFunctionTime[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let totalUs = 0;
  let busyUs = 0;
  let gcUs = 0;
  let waitUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = profile.timeDeltas[i] ?? 0;
    if (!node || dt <= 0) continue;
    totalUs += dt;
    const fn = node.callFrame.functionName || '(anonymous)';
    if (fn === '(garbage collector)') gcUs += dt;
    if (NOT_BUSY.has(fn) || (PROFILER.has(fn) && !node.callFrame.url)) continue;
    if (WAITING.has(fn) || (fn === '(anonymous)' && !node.callFrame.url)) {
      waitUs += dt;
      continue;
    }
    busyUs += dt;
    const file = node.callFrame.url.split('/').pop() ?? '';
    const key = file ? `${fn} (${file}:${node.callFrame.lineNumber + 1})` : fn;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const functions = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, selfMs: Math.round(us / 10) / 100, share: busyUs ? Math.round((us / busyUs) * 1000) / 10 : 0 }));
  const ms = (us: number) => Math.round(us / 10) / 100;
  return { busyMs: ms(busyUs), totalMs: ms(totalUs), gcMs: ms(gcUs), waitMs: ms(waitUs), functions };
}
