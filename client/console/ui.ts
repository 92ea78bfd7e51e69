/** Small page helpers of the console: messages, confirmation, downloads, copying. */
import { $ } from '../ui/dom.ts';
import type { Tone } from './wording.ts';

const TONES = ['tone-neutral', 'tone-busy', 'tone-ok', 'tone-warn', 'tone-error'];

/** Show `text` in a message line with a tone (empty text hides it). */
export function say(el: HTMLElement, text: string, tone: Tone = 'neutral'): void {
  el.classList.remove(...TONES);
  el.classList.add(`tone-${tone}`);
  el.textContent = text;
}

/**
 * Ask before something that cannot be undone, in a modal dialog (the browser keeps the focus inside it,
 * Escape cancels, and the focus returns to the button that opened it). Resolves true for "confirm".
 */
export function confirmAction(opts: { title: string; text: string; confirm: string }): Promise<boolean> {
  const dialog = $<HTMLDialogElement>('#confirm');
  $('#confirm-title', dialog).textContent = opts.title;
  $('#confirm-text', dialog).textContent = opts.text;
  $('#confirm-ok', dialog).textContent = opts.confirm;
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        resolve(dialog.returnValue === 'ok');
        opener?.focus();
      },
      { once: true },
    );
    dialog.showModal();
    // The safe choice has the focus first.
    $<HTMLButtonElement>('#confirm-cancel', dialog).focus();
  });
}

/** Save a blob as a file (the browser's download). */
export function saveFile(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Copy text to the clipboard; falls back to selecting the input (the operator presses Ctrl+C). */
export async function copyText(text: string, input: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input.focus();
    input.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}

/** An ISO time as `2026-12-02 23:28:01` in this computer's time zone (year first: unambiguous everywhere). */
export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '–';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Mark a form field as wrong with the message next to it (and clear with ''). */
export function fieldError(input: HTMLElement, errorEl: HTMLElement, message: string): void {
  errorEl.textContent = message;
  if (message) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}
