/**
 * Accessibility check for the end-to-end tests: run axe-core (the npm dev dependency, read from
 * node_modules: no network) in a playwright page and fail with every violation it finds.
 *
 *   await checkA11y(page, 'tiles imported');
 *
 * All of axe's rules run except the experimental ones (WCAG 2.0/2.1/2.2 A and AA and the best practices,
 * e.g. "region": all content inside landmarks, "scrollable-region-focusable": scrolling lists reachable by
 * keyboard). Hidden elements are not checked (axe skips them), so call it in every state the test reaches.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

const require = createRequire(import.meta.url);
let axeSource: string | undefined;

/** axe-core's browser bundle, read once from node_modules. */
function source(): string {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  return axeSource;
}

export interface A11yViolation {
  id: string;
  impact: string | null;
  help: string;
  helpUrl: string;
  nodes: { target: string; summary: string }[];
}

/** Run axe on the page as it is now; returns the violations (empty when none). */
export async function axeViolations(page: Page): Promise<A11yViolation[]> {
  const loaded = await page.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe === 'object');
  // page.evaluate with a string runs as a script in the page (the page's Content-Security-Policy does not
  // apply to it, unlike an injected <script> tag); axe's bundle then defines window.axe.
  if (!loaded) await page.evaluate(source());
  return page.evaluate(async () => {
    type AxeNode = { target: unknown[]; failureSummary?: string };
    type AxeResult = { id: string; impact?: string | null; help: string; helpUrl: string; nodes: AxeNode[] };
    const axe = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<{ violations: AxeResult[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact ?? null,
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.map(String).join(' '), summary: (n.failureSummary ?? '').replace(/\s+/g, ' ').trim() })),
    }));
  });
}

/** A readable list of violations, one block per rule with each offending element. */
export function formatViolations(violations: readonly A11yViolation[]): string {
  return violations
    .map((v) => `- ${v.id} (${v.impact ?? 'no impact given'}): ${v.help} [${v.helpUrl}]\n${v.nodes.map((n) => `    at ${n.target}${n.summary ? `: ${n.summary}` : ''}`).join('\n')}`)
    .join('\n');
}

/** Throw when axe finds any violation on the page; `label` names the state of the app being checked. */
export async function checkA11y(page: Page, label: string): Promise<void> {
  const violations = await axeViolations(page);
  if (violations.length === 0) return;
  throw new Error(`axe-core found ${violations.length} accessibility violation${violations.length === 1 ? '' : 's'} in the state "${label}":\n${formatViolations(violations)}`);
}
