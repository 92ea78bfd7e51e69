import { describe, expect, it } from 'vitest';
import { backendOrderFromQuery, tokenFromLink } from './query.ts';

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
});
