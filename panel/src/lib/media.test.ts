import { describe, expect, it } from 'vitest';
import { display, problemOf } from './media';
import { explain, ApiError } from './errors';
import { headerBytes } from './upload';
import { translator } from './i18n/testing';

describe('media', () => {
  it('shows each kind of file in the element that plays it', () => {
    expect(display({ kind: 'photo' })).toBe('image');
    expect(display({ kind: 'sticker' })).toBe('image');
    expect(display({ kind: 'sticker', isVideo: true })).toBe('video');
    expect(display({ kind: 'sticker', isAnimated: true })).toBe('file');
    expect(display({ kind: 'video_note' })).toBe('video');
    expect(display({ kind: 'animation' })).toBe('video');
    expect(display({ kind: 'voice' })).toBe('audio');
    expect(display({ kind: 'audio' })).toBe('audio');
    expect(display({ kind: 'document' })).toBe('file');
  });

  it('reads why the server refused a file', () => {
    expect(problemOf(200)).toBeNull();
    expect(problemOf(206)).toBeNull();
    expect(problemOf(403)).toBe('expired');
    expect(problemOf(422)).toBe('tooLarge');
    expect(problemOf(410)).toBe('gone');
    expect(problemOf(404)).toBe('forbidden');
    expect(problemOf(502)).toBe('unavailable');
  });

  it('sends a file name as its UTF-8 bytes', () => {
    expect(headerBytes('a.pdf')).toBe('a.pdf');
    const bytes = headerBytes('счёт.pdf');
    expect([...bytes].every((char) => char.charCodeAt(0) < 256)).toBe(true);
    expect(new TextDecoder().decode(Uint8Array.from([...bytes].map((char) => char.charCodeAt(0))))).toBe('счёт.pdf');
    expect(headerBytes('a\nb')).toBe('a_b');
  });
});

describe('errors shown to the agent', () => {
  it('are in the agent language, with Russian plural forms', () => {
    const limited = (seconds: number) => new ApiError('slow down', 'RATE_LIMITED', { retryAfter: seconds });
    expect(explain(limited(1), translator('en'))).toBe('Too many attempts. Try again in 1 second.');
    expect(explain(limited(5), translator('en'))).toBe('Too many attempts. Try again in 5 seconds.');
    expect(explain(limited(1), translator('ru'))).toBe('Слишком много попыток. Повторите через 1 секунду.');
    expect(explain(limited(3), translator('ru'))).toBe('Слишком много попыток. Повторите через 3 секунды.');
    expect(explain(limited(11), translator('ru'))).toBe('Слишком много попыток. Повторите через 11 секунд.');
    expect(explain(new ApiError('x', 'NETWORK'), translator('ru'))).toBe('Сервер недоступен. Проверьте подключение и попробуйте ещё раз.');
    expect(explain(new ApiError('the ticket is closed', 'CONFLICT'), translator('en'))).toBe('Refused: the ticket is closed');
  });
});
