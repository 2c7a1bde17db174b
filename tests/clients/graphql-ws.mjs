// Drives the server's `graphql-transport-ws` endpoint with the reference `graphql-ws` client
// (or, where a scenario needs a client that breaks the protocol, with the same `ws` socket and
// the reference library's message encoder), and prints what happened as one line of JSON:
//
//   {"closed": {"code": 4403, "reason": "…", "name": "Forbidden"}, "results": […], "errors": […]}
//
// `name` is the reference library's own name for the close code (its `CloseCode` enum), so a
// test reads the protocol's meaning from the reference implementation, not from our numbers.
//
// Usage: node graphql-ws.mjs <scenario> <ws-url> [token] [query]
import { CloseCode, GRAPHQL_TRANSPORT_WS_PROTOCOL, MessageType, createClient, stringifyMessage } from 'graphql-ws';
import WebSocket from 'ws';

const [scenario, url, token = '', query = '{ __typename }'] = process.argv.slice(2);
const outcome = { closed: null, results: [], errors: [] };

function finish() {
  process.stdout.write(JSON.stringify(outcome) + '\n');
  process.exit(0);
}

function closedWith(event) {
  outcome.closed = { code: event.code, reason: String(event.reason), name: CloseCode[event.code] ?? null };
  finish();
}

// A scenario that neither closes nor finishes in time fails the test with what it saw.
setTimeout(() => {
  outcome.timedOut = true;
  finish();
}, 30_000).unref();

/** The reference client, failing fast: no retries, connecting at once. */
function client(options) {
  const instance = createClient({
    url,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => {},
    ...options,
  });
  instance.on('closed', closedWith);
  return instance;
}

/** Runs `query` on `instance`, recording results and errors; resolves when it ends. */
function run(instance, text) {
  return new Promise((resolve) => {
    instance.subscribe(
      { query: text },
      {
        next: (result) => outcome.results.push(result),
        error: (error) => {
          // An `error` message arrives as the array of GraphQL errors.
          outcome.errors.push(...(Array.isArray(error) ? error : [{ message: String(error?.message ?? error) }]));
          resolve();
        },
        complete: resolve,
      },
    );
  });
}

/** A raw socket speaking `graphql-transport-ws`, for the messages the client never sends. */
function raw(messages) {
  const socket = new WebSocket(url, GRAPHQL_TRANSPORT_WS_PROTOCOL);
  socket.on('open', () => messages.forEach((message) => socket.send(message)));
  socket.on('close', (code, reason) => closedWith({ code, reason: reason.toString() }));
  socket.on('error', () => {});
}

const init = stringifyMessage({ type: MessageType.ConnectionInit, payload: { authorization: `Bearer ${token}` } });
const subscribe = (id) => stringifyMessage({ id, type: MessageType.Subscribe, payload: { query } });

switch (scenario) {
  // connection_init with a credential the server refuses (4403).
  case 'refused':
    client({ connectionParams: { authorization: `Bearer ${token}` } });
    break;
  // connection_init without a credential (4403).
  case 'anonymous':
    client({ connectionParams: {} });
    break;
  // The client opens the socket but never sends connection_init (4408).
  case 'silent':
    client({ connectionParams: () => new Promise(() => {}) });
    break;
  // Two operations with the same id while the first still runs (4409).
  case 'same-id': {
    const instance = client({ connectionParams: { authorization: `Bearer ${token}` }, generateID: () => 'same-id' });
    run(instance, query);
    run(instance, query);
    break;
  }
  // One operation to completion, then the client ends the socket (1000).
  case 'run': {
    const instance = client({ connectionParams: { authorization: `Bearer ${token}` } });
    run(instance, query).then(finish);
    break;
  }
  // subscribe before connection_init (4401).
  case 'subscribe-first':
    raw([subscribe('1')]);
    break;
  // subscribe while connection_init is still being checked (4401).
  case 'subscribe-before-ack':
    raw([init, subscribe('1')]);
    break;
  // connection_init twice (4429).
  case 'init-twice':
    raw([init, init]);
    break;
  // Not a message of the protocol (4400).
  case 'not-json':
    raw(['this is not json']);
    break;
  case 'unknown-type':
    raw([JSON.stringify({ type: 'subscribe_please' })]);
    break;
  default:
    process.stderr.write(`unknown scenario ${scenario}\n`);
    process.exit(2);
}
