// Notifications while the tab is in the background: a sound and a desktop notification (with
// the agent's permission) for a new ticket, and for a customer message on a ticket assigned
// to the agent. Which changes deserve one is decided by `worthNotifying`, unit-tested.

export interface Seen {
  unreadByAgents: number;
}

export interface Changed {
  ticketId: string;
  unreadByAgents: number;
  assigneeId?: string | null;
  lastMessageDirection?: string | null;
}

/** What to say about a change of the live list, or null for nothing. */
export function worthNotifying(
  before: Seen | undefined,
  after: Changed,
  inFilter: boolean,
  me: string | null,
): 'new-ticket' | 'customer-message' | null {
  if (!inFilter) return null;
  if (!before) return after.unreadByAgents > 0 ? 'new-ticket' : null;
  const more = after.unreadByAgents > before.unreadByAgents && after.lastMessageDirection === 'in';
  return more && me !== null && after.assigneeId === me ? 'customer-message' : null;
}

let audio: AudioContext | null = null;

/** A short, quiet tone made by the browser (no sound file to load). */
function chime(): void {
  try {
    audio ??= new AudioContext();
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.3);
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start();
    oscillator.stop(audio.currentTime + 0.3);
  } catch {
    // No audio here: the notification alone.
  }
}

export function notificationsAllowed(): NotificationPermission | 'unsupported' {
  return typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
}

export async function askForNotifications(): Promise<void> {
  if (typeof Notification !== 'undefined' && Notification.permission === 'default') {
    await Notification.requestPermission();
  }
}

/** Tells the agent, when the tab is not in front. */
export function notify(title: string, body: string, tag: string, onclick: () => void): void {
  if (typeof document === 'undefined' || !document.hidden) return;
  chime();
  if (notificationsAllowed() !== 'granted') return;
  const shown = new Notification(title, { body, tag });
  shown.onclick = () => {
    window.focus();
    onclick();
    shown.close();
  };
}
