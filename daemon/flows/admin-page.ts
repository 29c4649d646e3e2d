// The admin page and the central monitor on the admin listener: the page's files from web-admin/ and
// the two libraries it runs on (admin/page-assets.ts), and `/metrics` for the scraper with the
// credentials `admin.metrics` names (admin/metrics-endpoint.ts), every refusal audited (coalesced: a
// misconfigured scraper retries every few seconds).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { securityAlert } from '../core/audit-event-builders.ts';
import type { AuditSink } from '../core/audit.ts';
import { EdgeError } from '../core/errors.ts';
import { MetricsAccess, serveMetrics } from '../admin/metrics-endpoint.ts';
import { PageAssets, libraryFiles } from '../admin/page-assets.ts';
import type { PrometheusMetrics } from '../admin/prometheus-metrics.ts';
import type { AdminListener } from '../admin/admin-listener.ts';
import type { FlowContext } from './flow-context.ts';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const WEB_ADMIN_DIR = join(REPO_ROOT, 'web-admin');
export const NODE_MODULES_DIR = join(REPO_ROOT, 'node_modules');

/** The page's assets, read and compressed once (a start step: it reads files). */
export function loadPageAssets(): PageAssets {
  try {
    return new PageAssets(WEB_ADMIN_DIR, libraryFiles(NODE_MODULES_DIR));
  } catch (err) {
    throw new EdgeError(
      'EDGE_CONFIG_UNREADABLE',
      `the admin page's files cannot be read from ${WEB_ADMIN_DIR}: reinstall the box's software`,
      {
        cause: err,
      },
    );
  }
}

export function mountAdminPage(ctx: FlowContext, listener: AdminListener, metrics: PrometheusMetrics, sink: AuditSink): PageAssets {
  const assets = loadPageAssets();
  listener.serveStatic((req) => assets.handle(req));
  const m = ctx.config.admin?.metrics;
  if (m !== undefined) {
    const access = new MetricsAccess({
      ...(m.clientCa === undefined ? {} : { clientCa: readFileSync(m.clientCa) }),
      ...(m.tokenFile === undefined ? {} : { token: readFileSync(m.tokenFile, 'utf8') }),
    });
    const log = ctx.logger.child({ component: 'metrics' });
    listener.serveRaw('/metrics', (req, res) =>
      serveMetrics(req, res, {
        access,
        exposition: () => metrics.exposition(),
        onEvent: (e) => {
          if (e.type !== 'refused') return;
          log.warn('metrics.scrape-refused', { address: e.address, reason: e.reason });
          sink.record(
            securityAlert('metrics.scrape-refused', [{ kind: 'system', id: 'unknown', address: e.address, requestor: true }], e.reason),
          );
        },
      }),
    );
  }
  return assets;
}
