import { describe, expect, it } from 'vitest';
import { backendOrderFromQuery, reconnectFromQuery, tokenFromLink } from './query.ts';

describe('join links', () => {
  it('read the token from the fragment (#token=…) and give the address without it', () => {
    expect(tokenFromLink('https://fed.example.org/#token=abc-DEF_123')).toEqual({ token: 'abc-DEF_123', cleanUrl: '/' });
    expect(tokenFromLink('https://fed.example.org/app/?backend=webgl#token=t%2Bx&view=1')).toEqual({ token: 't+x', cleanUrl: '/app/?backend=webgl#view=1' });
  });

  it('still read an old link’s ?token=… and drop it from the query', () => {
    expect(tokenFromLink('http://localhost:8080/?token=old-token&backend=cpu')).toEqual({ token: 'old-token', cleanUrl: '/?backend=cpu' });
    // Both: the fragment wins, and neither is left behind.
    expect(tokenFromLink('http://h/?token=old#token=new')).toEqual({ token: 'new', cleanUrl: '/' });
  });

  it('leave a page without a token as it is', () => {
    expect(tokenFromLink('http://h/x?backend=wasm#section')).toEqual({ cleanUrl: '/x?backend=wasm#section' });
    expect(tokenFromLink('http://h/?token=#token=')).toEqual({ cleanUrl: '/' });
  });

  it('backend order from ?backend=', () => {
    expect(backendOrderFromQuery('webgl, CPU, bogus')).toEqual(['webgl', 'cpu']);
    expect(backendOrderFromQuery(null)).toBeUndefined();
  });

  it('reconnection backoff cap from ?reconnectMaxMs= (whole milliseconds, at least 500; else the default)', () => {
    expect(reconnectFromQuery('2000')).toEqual({ maxMs: 2000 });
    expect(reconnectFromQuery('500')).toEqual({ maxMs: 500 });
    for (const v of [null, '', '499', '0', '-2000', '2e3', '1.5', 'fast']) expect(reconnectFromQuery(v), String(v)).toBeUndefined();
  });
});
