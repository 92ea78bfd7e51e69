import { DockerfileParser, type Copy, type Env, type JSONInstruction } from 'dockerfile-ast';

/** A Dockerfile read into its stages, for the deploy tests (parsing by dockerfile-ast). */

export interface DockerInstruction {
  keyword: string;
  /** Arguments, whitespace-split, flags excluded, ARG defaults substituted. */
  args: string[];
  /** The exec form (JSON array) of CMD/ENTRYPOINT/RUN, when used. */
  json?: string[];
  /** COPY --from=… */
  from?: string;
  /** ENV name=value pairs. */
  env?: [string, string][];
  raw: string;
}

export interface DockerStage {
  name?: string;
  /** The FROM image, ARG defaults substituted: an image reference or an earlier stage's name. */
  base: string;
  instructions: DockerInstruction[];
}

export function parseDockerfile(text: string): { args: Record<string, string>; stages: DockerStage[] } {
  const df = DockerfileParser.parse(text);
  const args: Record<string, string> = {};
  for (const a of df.getInitialARGs()) {
    const p = a.getProperty();
    if (p?.getName()) args[p.getName()] = p.getValue() ?? '';
  }
  const subst = (s: string) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a: string | undefined, b: string | undefined) => args[(a ?? b)!] ?? m);
  const stages: DockerStage[] = [];
  for (const i of df.getInstructions()) {
    const keyword = i.getKeyword();
    if (keyword === 'FROM') {
      const f = df.getFROMs().find((x) => x.getRange().start.line === i.getRange().start.line)!;
      stages.push({ name: f.getBuildStage() ?? undefined, base: subst(f.getImage() ?? ''), instructions: [] });
      continue;
    }
    if (keyword === 'ARG' && stages.length === 0) continue;
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile: ${keyword} before the first FROM`);
    const ins: DockerInstruction = { keyword, args: i.getArguments().map((a) => subst(a.getValue())), raw: i.getRawArgumentsContent() ?? '' };
    if ('getJSONStrings' in i) {
      const strings = (i as JSONInstruction).getJSONStrings();
      if (strings.length) ins.json = strings.map((s) => s.getJSONValue());
    }
    if (keyword === 'COPY' || keyword === 'ADD') ins.from = (i as Copy).getFromFlag()?.getValue() ?? undefined;
    if (keyword === 'ENV') ins.env = (i as Env).getProperties().map((p) => [p.getName(), p.getValue() ?? '']);
    stage.instructions.push(ins);
  }
  return { args, stages };
}

/** A stage and the stages it is built FROM, outermost first (the image's whole recipe). */
export function stageChain(stages: DockerStage[], stage: DockerStage): DockerStage[] {
  const chain = [stage];
  for (let s = stage; ; ) {
    const parent = stages.find((x) => x.name !== undefined && x.name === s.base);
    if (!parent || chain.includes(parent)) break;
    chain.unshift(parent);
    s = parent;
  }
  return chain;
}
