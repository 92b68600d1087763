/**
 * Prometheus text exposition of kstreams' metrics, through OpenTelemetry's Prometheus exporter
 * (`@opentelemetry/exporter-prometheus` + `@opentelemetry/sdk-metrics`, optional peer
 * dependencies loaded on first use).
 *
 * Why the OpenTelemetry exporter and not prom-client (checked 2026-12-04 with `npm view`):
 * - prom-client's latest release is still 15.1.3 (2024); no release since, while its issue
 *   tracker keeps open issues and PRs waiting (npm download counts were not reachable from here;
 *   prom-client is the more downloaded of the two);
 * - `@opentelemetry/exporter-prometheus` ships with every OpenTelemetry JS release (0.300.0,
 *   0.301.0 and 0.301.2 in Oct–Nov 2026 alone) under the CNCF OpenTelemetry project, and it
 *   renders the same instruments {@link registerOpenTelemetry} declares: one bridge
 *   (Kafka Streams metrics → OpenTelemetry instruments) serves both OTLP and Prometheus users,
 *   with one naming convention;
 * - cost: the SDK comes along (sdk-metrics, core, resources), and its peer range on
 *   `@opentelemetry/api` is narrow (`>=1.10 <1.11` today), hence optional peers, not dependencies.
 * A service already running an OpenTelemetry SDK with a `PrometheusExporter` reader does not need
 * this module: `registerOpenTelemetry(meterProvider.getMeter('kstreams'), streams)` is enough.
 *
 * @example
 * ```ts
 * const scraper = await createPrometheusScraper(streams)
 * http.createServer(async (req, res) => {
 *   res.writeHead(200, { 'content-type': scraper.contentType }).end(await scraper.scrape())
 * }).listen(9464, '127.0.0.1')
 * ```
 */
import type * as SdkMetrics from '@opentelemetry/sdk-metrics'
import type * as ExporterPrometheus from '@opentelemetry/exporter-prometheus'
import { StreamsConfigError } from '../../topology/errors.js'
import { registerOpenTelemetry } from './opentelemetry.js'
import type { MetricsSource, RecordingLevel } from './types.js'

/** Renders Prometheus text on demand. */
export interface PrometheusScraper {
  /** `text/plain; version=0.0.4; charset=utf-8` */
  readonly contentType: string
  /** Collects every metric now and renders the Prometheus text format. */
  scrape(): Promise<string>
  /** Releases the private MeterProvider. */
  shutdown(): Promise<void>
}

/** Options of {@link createPrometheusScraper}. */
export interface PrometheusScraperOptions {
  /** Add OpenTelemetry's `target_info` series (the SDK resource). @defaultValue false */
  readonly withTargetInfo?: boolean
}

type SdkModule = typeof SdkMetrics
type ExporterModule = typeof ExporterPrometheus

async function loadOpenTelemetry(): Promise<{ sdk: SdkModule; exporter: ExporterModule }> {
  try {
    const [sdk, exporter] = await Promise.all([import('@opentelemetry/sdk-metrics'), import('@opentelemetry/exporter-prometheus')])
    return { sdk, exporter }
  } catch (e) {
    throw new StreamsConfigError(
      'Prometheus export needs the optional peer dependencies @opentelemetry/api, @opentelemetry/sdk-metrics and @opentelemetry/exporter-prometheus: npm install @opentelemetry/api @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus',
      { cause: e },
    )
  }
}

/**
 * A Prometheus text renderer over `source` (a KafkaStreams instance, a TopologyTestDriver or a
 * `StreamsMetrics`): a private MeterProvider whose only reader is a PrometheusExporter that starts
 * no server; each `scrape()` collects and serializes. Metric names and labels as
 * {@link registerOpenTelemetry} (`kafka_streams_thread_process_rate{thread_id="..."}`).
 * @throws StreamsConfigError when the optional OpenTelemetry packages are not installed
 */
export async function createPrometheusScraper(
  source: MetricsSource & { readonly recordingLevel?: RecordingLevel },
  options: PrometheusScraperOptions = {},
): Promise<PrometheusScraper> {
  const { sdk, exporter: prom } = await loadOpenTelemetry()
  const withoutTargetInfo = options.withTargetInfo !== true
  const reader = new prom.PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, withoutTargetInfo })
  const provider = new sdk.MeterProvider({ readers: [reader] })
  registerOpenTelemetry(provider.getMeter('kstreams'), source)
  const serializer = new prom.PrometheusSerializer(undefined, false, undefined, withoutTargetInfo, true)
  return {
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    async scrape(): Promise<string> {
      const { resourceMetrics } = await reader.collect()
      return serializer.serialize(resourceMetrics)
    },
    shutdown: () => provider.shutdown(),
  }
}
