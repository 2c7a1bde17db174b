// Half-written replies and notes, kept in local storage per ticket so that neither a reload
// nor an ended session loses them.

const PREFIX = 'ledgerdesk.draft.';

export interface Draft {
  text: string;
  note: boolean;
}

export function readDraft(storage: Pick<Storage, 'getItem'>, ticketId: string): Draft {
  try {
    const value = JSON.parse(storage.getItem(PREFIX + ticketId) ?? 'null') as Partial<Draft> | null;
    if (value && typeof value.text === 'string') return { text: value.text, note: value.note === true };
  } catch {
    // not a draft of ours
  }
  return { text: '', note: false };
}

export function writeDraft(storage: Pick<Storage, 'setItem' | 'removeItem'>, ticketId: string, draft: Draft): void {
  if (draft.text.trim() === '') storage.removeItem(PREFIX + ticketId);
  else storage.setItem(PREFIX + ticketId, JSON.stringify(draft));
}

/** Templates whose title or text holds every word typed after `/`. */
export function matchTemplates<T extends { title: string; text: string }>(templates: readonly T[], query: string): T[] {
  const wanted = query.toLowerCase().split(/\s+/).filter(Boolean);
  return templates.filter((template) => {
    const haystack = `${template.title}\n${template.text}`.toLowerCase();
    return wanted.every((word) => haystack.includes(word));
  });
}

/** The `/words` being typed at the start of the composer, if any. */
export function slashQuery(text: string): string | null {
  const match = /^\/(\S*(?: \S+)*)$/.exec(text);
  return match ? (match[1] ?? '') : null;
}
