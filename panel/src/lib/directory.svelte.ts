// The team's categories, agents and quick replies, loaded once per sign-in.
import { request } from './api';
import { DIRECTORY, TEMPLATES } from './tickets';
import type { ResultOf } from './graphql';
import { t } from './i18n.svelte';

type Directory = ResultOf<typeof DIRECTORY>;
type Template = ResultOf<typeof TEMPLATES>['templates'][number];

class DirectoryStore {
  categories = $state<Directory['categories']>([]);
  agents = $state<Directory['agents']>([]);
  templates = $state<Template[]>([]);
  private loaded: Promise<void> | null = null;

  load(): Promise<void> {
    this.loaded ??= Promise.all([request(DIRECTORY, {}), request(TEMPLATES, {})])
      .then(([directory, templates]) => {
        this.categories = directory.categories;
        this.agents = directory.agents;
        this.templates = templates.templates;
      })
      .catch((error: unknown) => {
        this.loaded = null;
        throw error;
      });
    return this.loaded;
  }

  categoryName(id: string | null | undefined): string {
    if (!id) return '';
    return this.categories.find((category) => category.categoryId === id)?.name ?? '';
  }

  agentName(id: string | null | undefined): string {
    if (!id) return '';
    return this.agents.find((agent) => agent.agentId === id)?.name ?? t('common.anAgent');
  }
}

export const directory = new DirectoryStore();
