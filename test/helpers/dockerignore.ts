/**
 * Docker's .dockerignore rules: each line a pattern on the path relative to the build context (`*` and
 * `?` within one path segment, `**` across any number of them), a match excludes the path and everything
 * under it, `!` re-includes, and the last matching line wins.
 */
export function dockerignoreMatcher(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).trim().replace(/^\/+|\/+$/g, '');
      let re = '';
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i];
        if (c === '*' && pattern[i + 1] === '*') {
          if (pattern[i + 2] === '/') {
            re += '(?:.*/)?';
            i += 2;
          } else {
            re += '.*';
            i += 1;
          }
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}(?:/.*)?$`) };
    });
  return (path: string) => {
    const p = path.replace(/^\.\/+/, '').replace(/\/+$/, '');
    let excluded = false;
    for (const r of rules) if (r.re.test(p)) excluded = !r.negate;
    return excluded;
  };
}
