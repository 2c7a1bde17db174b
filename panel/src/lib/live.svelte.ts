// The live connection: one `graphql-ws` client for every subscription of the page. It
// connects when the first subscription starts, reconnects for ever with growing pauses
// (capped at 5 s), signs `connection_init` with a fresh access token each time, and after a
// reconnect restarts every subscription with its current variables (a cursor-based one
// resumes after the last cursor it saw) and tells it to catch up on what it may have missed.
import { createClient, type Client } from 'graphql-ws';
import type { TadaDocumentNode } from './graphql';
import { text } from './transport';
import { session } from './session.svelte';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'offline';

interface Live {
  start(): void;
  stop(): void;
  resync(): void;
}

class Connection {
  state = $state<ConnectionState>('connecting');
  private client: Client | null = null;
  private readonly running = new Set<Live>();
  private everConnected = false;

  constructor() {
    if (typeof window === 'undefined') return;
    window.addEventListener('offline', () => (this.state = 'offline'));
    window.addEventListener('online', () => {
      if (this.state === 'offline') this.state = 'reconnecting';
    });
  }

  private ensure(): Client {
    if (this.client) return this.client;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const client = createClient({
      url: `${scheme}://${location.host}/graphql/ws`,
      lazy: true,
      lazyCloseTimeout: 2_000,
      keepAlive: 15_000,
      retryAttempts: Number.POSITIVE_INFINITY,
      shouldRetry: () => session.signedIn,
      retryWait: async (retries) => {
        const pause = Math.min(5_000, 250 * 2 ** retries) * (0.5 + Math.random() / 2);
        await new Promise((resolve) => setTimeout(resolve, pause));
      },
      connectionParams: async () => {
        const token = await session.accessToken();
        return { authorization: `Bearer ${token ?? ''}` };
      },
      on: {
        connecting: () => {
          this.state = this.everConnected ? 'reconnecting' : 'connecting';
        },
        connected: () => {
          const again = this.everConnected;
          this.everConnected = true;
          this.state = 'live';
          if (again) for (const live of this.running) live.resync();
        },
        closed: (event) => {
          const code = (event as CloseEvent | undefined)?.code;
          // 4403: the credential ended (expired, revoked); refresh before the next attempt.
          if (code === 4403) void session.refresh().catch(() => undefined);
          // The lazy close after the last subscription ended (a screen without live data,
          // such as the dashboard) loses nothing: the next subscription connects again.
          if (this.running.size === 0 && navigator.onLine !== false) return;
          this.state = navigator.onLine === false ? 'offline' : 'reconnecting';
        },
      },
    });
    this.client = client;
    return client;
  }

  /**
   * Runs a subscription until the returned function is called. `variables` is read at each
   * (re)start; `onResync` runs after a reconnect, to reload what the gap may have hidden.
   */
  subscribe<Result, Variables>(
    document: TadaDocumentNode<Result, Variables>,
    variables: () => Variables,
    onData: (data: Result) => void,
    onResync: () => void = () => {},
  ): () => void {
    const query = text(document);
    let dispose: (() => void) | null = null;
    const live: Live = {
      start: () => {
        dispose = this.ensure().subscribe<Result>(
          { query, variables: variables() as Record<string, unknown> },
          {
            next: (value) => {
              if (value.data) onData(value.data);
            },
            error: () => {
              // The socket closed under it or the server refused it; the reconnect restarts it.
            },
            complete: () => {},
          },
        );
      },
      stop: () => {
        dispose?.();
        dispose = null;
      },
      resync: () => {
        live.stop();
        live.start();
        onResync();
      },
    };
    this.running.add(live);
    live.start();
    return () => {
      live.stop();
      this.running.delete(live);
    };
  }

  /** Closes the socket (sign-out). */
  close(): void {
    for (const live of this.running) live.stop();
    this.running.clear();
    void this.client?.dispose();
    this.client = null;
    this.everConnected = false;
    this.state = 'connecting';
  }
}

export const connection = new Connection();
