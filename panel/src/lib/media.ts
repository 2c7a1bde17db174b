// How a message's file is shown, and what a refused fetch of it means. Pure, unit-tested.

export type Display = 'image' | 'video' | 'audio' | 'file';

/** How the panel shows a file of this kind (stickers: animated TGS has no browser player). */
export function display(media: { kind: string; isAnimated?: boolean | null; isVideo?: boolean | null }): Display {
  switch (media.kind) {
    case 'photo':
      return 'image';
    case 'sticker':
      if (media.isVideo) return 'video';
      return media.isAnimated ? 'file' : 'image';
    case 'video':
    case 'animation':
    case 'video_note':
      return 'video';
    case 'voice':
    case 'audio':
      return 'audio';
    default:
      return 'file';
  }
}

/** Why a file cannot be shown, from the status `GET /media/…` answered. */
export type Problem = 'expired' | 'tooLarge' | 'gone' | 'forbidden' | 'unavailable';

export function problemOf(status: number): Problem | null {
  if (status >= 200 && status < 400) return null;
  switch (status) {
    case 403:
      return 'expired';
    case 422:
      return 'tooLarge';
    case 410:
      return 'gone';
    case 401:
    case 404:
      return 'forbidden';
    default:
      return 'unavailable';
  }
}
