// The panel's own routes, in the browser's history: `/` (the inbox), `/tickets/<uuid>`,
// `/activity` (the live feed of events), `/broadcasts`, `/broadcasts/<uuid>`, `/dashboard`
// and `/admin/<section>`.
// The server answers every such path with the panel (see docs/architecture.md); paths of
// the server's own (`/graphql`, `/media/…`, `/broadcasts/<uuid>/recipients.csv`) are never
// client routes.

export const ADMIN_SECTIONS = ['agents', 'categories', 'templates', 'greeting', 'tokens'] as const;
export type AdminSection = (typeof ADMIN_SECTIONS)[number];

export type Route =
  | { name: 'inbox' }
  | { name: 'activity' }
  | { name: 'ticket'; ticketId: string }
  | { name: 'broadcasts' }
  | { name: 'broadcast'; broadcastId: string }
  | { name: 'dashboard' }
  | { name: 'admin'; section: AdminSection };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function parseRoute(path: string): Route {
  const ticket = /^\/tickets\/([^/]+)\/?$/.exec(path);
  if (ticket?.[1] && UUID.test(ticket[1])) return { name: 'ticket', ticketId: ticket[1].toLowerCase() };
  const broadcast = /^\/broadcasts\/([^/]+)\/?$/.exec(path);
  if (broadcast?.[1] && UUID.test(broadcast[1])) {
    return { name: 'broadcast', broadcastId: broadcast[1].toLowerCase() };
  }
  if (/^\/activity\/?$/.test(path)) return { name: 'activity' };
  if (/^\/broadcasts\/?$/.test(path)) return { name: 'broadcasts' };
  if (/^\/dashboard\/?$/.test(path)) return { name: 'dashboard' };
  const admin = /^\/admin(?:\/([a-z]+))?\/?$/.exec(path);
  if (admin) {
    const section = (ADMIN_SECTIONS as readonly string[]).includes(admin[1] ?? '')
      ? (admin[1] as AdminSection)
      : 'agents';
    return { name: 'admin', section };
  }
  return { name: 'inbox' };
}

export function routePath(route: Route): string {
  switch (route.name) {
    case 'ticket':
      return `/tickets/${route.ticketId}`;
    case 'broadcast':
      return `/broadcasts/${route.broadcastId}`;
    case 'admin':
      return `/admin/${route.section}`;
    case 'inbox':
      return '/';
    default:
      return `/${route.name}`;
  }
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
