// Single-key shortcuts (j, k, Enter, r, e, ?): each screen registers what it handles; keys
// typed into a field are never taken.

type Handler = (event: KeyboardEvent) => void;
const handlers = new Map<string, Handler>();

export function onKey(key: string, handler: Handler): () => void {
  handlers.set(key, handler);
  return () => {
    if (handlers.get(key) === handler) handlers.delete(key);
  };
}

export function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName);
}

export function dispatchKey(event: KeyboardEvent): void {
  if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
  const handler = handlers.get(event.key);
  if (handler) {
    event.preventDefault();
    handler(event);
  }
}
