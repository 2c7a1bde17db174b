// The panel's own routes, in the browser's history: `/` (the inbox), `/tickets/<uuid>` and
// `/activity` (the live feed of events).
// The server answers every such path with the panel (see docs/architecture.md); paths of
// the server's own (`/graphql`, `/media/…`, `/broadcasts/…`) are never client routes.

export type Route = { name: 'inbox' } | { name: 'activity' } | { name: 'ticket'; ticketId: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseRoute(path: string): Route {
  const match = /^\/tickets\/([^/]+)\/?$/.exec(path);
  if (match?.[1] && UUID.test(match[1])) return { name: 'ticket', ticketId: match[1].toLowerCase() };
  if (/^\/activity\/?$/.test(path)) return { name: 'activity' };
  return { name: 'inbox' };
}

export function routePath(route: Route): string {
  if (route.name === 'ticket') return `/tickets/${route.ticketId}`;
  return route.name === 'activity' ? '/activity' : '/';
}

class Router {
  route = $state<Route>({ name: 'inbox' });

  constructor() {
    if (typeof window === 'undefined') return;
    this.route = parseRoute(location.pathname);
    window.addEventListener('popstate', () => {
      this.route = parseRoute(location.pathname);
    });
  }

  go(route: Route): void {
    const path = routePath(route);
    if (location.pathname !== path) history.pushState(null, '', path);
    this.route = route;
  }
}

export const router = new Router();
