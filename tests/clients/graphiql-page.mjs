// Runs the GraphiQL page's own script (as the server serves it) with GraphiQL, React and the
// DOM replaced by recorders, types a token into its Token field and submits it, then uses the
// options the page handed to `GraphiQL.createFetcher` the way GraphiQL does: a query over HTTP
// with its headers, and one over the WebSocket with its `connection_init` payload, through the
// reference `graphql-ws` client. Prints one line of JSON:
//
//   {"options": {…}, "http": {…response…}, "ws": {…result…}}
//
// Usage: node graphiql-page.mjs <http://host:port> <token> <query>
import vm from 'node:vm';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [base, token, query] = process.argv.slice(2);

const html = await (await fetch(`${base}/graphql`)).text();
const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((match) => match[1]);
if (scripts.length !== 1) throw new Error(`expected one inline script, found ${scripts.length}`);

const fetchers = [];
const listeners = {};
const elements = {};
const element = (id) =>
  (elements[id] ??= {
    id,
    value: '',
    textContent: '',
    addEventListener: (type, listener) => (listeners[`${id}:${type}`] = listener),
  });
const storage = new Map();
const context = vm.createContext({
  URL,
  window: { location: { href: `${base}/graphql` } },
  document: { getElementById: element },
  sessionStorage: {
    getItem: (key) => storage.get(key) ?? null,
    setItem: (key, value) => storage.set(key, String(value)),
    removeItem: (key) => storage.delete(key),
  },
  React: { createElement: (component, props) => ({ component, props }) },
  ReactDOM: { createRoot: () => ({ render: () => {} }) },
  GraphiQL: {
    createFetcher: (options) => {
      fetchers.push(options);
      return () => {};
    },
  },
});
vm.runInContext(scripts[0], context);

element('token').value = `  Bearer ${token} `;
listeners['signin:submit']({ preventDefault: () => {} });
const options = fetchers.at(-1);

const http = await (
  await fetch(options.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: JSON.stringify({ query }),
  })
).json();

const client = createClient({
  url: options.subscriptionUrl,
  webSocketImpl: WebSocket,
  connectionParams: options.wsConnectionParams,
  retryAttempts: 0,
});
const ws = await new Promise((resolve) => {
  let result = null;
  client.subscribe(
    { query },
    {
      next: (value) => (result = value),
      error: (error) => resolve({ error: String(error?.reason ?? error?.message ?? JSON.stringify(error)) }),
      complete: () => resolve(result),
    },
  );
});
await client.dispose();

process.stdout.write(
  JSON.stringify({ options, http, ws, stored: storage.get('ledgerdesk.graphiql.token') ?? null }) + '\n',
);
process.exit(0);
