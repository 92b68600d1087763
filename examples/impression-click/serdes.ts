/**
 * The example's value serdes: Schema Registry Avro for the real topics, plain Avro for the
 * TopologyTestDriver (no registry). Keys are plain UTF-8 strings (impressionId, campaignId).
 */
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry'
import { avroSerde, schemaRegistryAvroSerde, type SchemaRegistryAvroSerde } from '../../lib/serdes/index.js'
import type { Serde } from '../../topology/serde.js'
import {
  AdEventSchema,
  CampaignCtrSchema,
  ClickSchema,
  ImpressionSchema,
  type AdEvent,
  type CampaignCtr,
  type Click,
  type Impression,
} from './schemas/types.js'

/** One value serde per record type of the example. */
export interface ImpressionClickSerdes {
  impression: Serde<Impression>
  click: Serde<Click>
  adEvent: Serde<AdEvent>
  campaignCtr: Serde<CampaignCtr>
}

/** {@link ImpressionClickSerdes} backed by a schema registry (with the registry hooks). */
export interface ImpressionClickRegistrySerdes extends ImpressionClickSerdes {
  impression: SchemaRegistryAvroSerde<Impression>
  click: SchemaRegistryAvroSerde<Click>
  adEvent: SchemaRegistryAvroSerde<AdEvent>
  campaignCtr: SchemaRegistryAvroSerde<CampaignCtr>
}

/** Schema Registry Avro serdes (Confluent wire format) sharing one registry client. */
export function registrySerdes(registry: SchemaRegistry | { host: string }): ImpressionClickRegistrySerdes {
  const client = registry instanceof SchemaRegistry ? registry : new SchemaRegistry(registry)
  return {
    impression: schemaRegistryAvroSerde<Impression>({ registry: client, schema: ImpressionSchema }),
    click: schemaRegistryAvroSerde<Click>({ registry: client, schema: ClickSchema }),
    adEvent: schemaRegistryAvroSerde<AdEvent>({ registry: client, schema: AdEventSchema }),
    campaignCtr: schemaRegistryAvroSerde<CampaignCtr>({ registry: client, schema: CampaignCtrSchema }),
  }
}

/** Plain Avro serdes (no registry, no wire-format header): for tests with the TopologyTestDriver. */
export function plainAvroSerdes(): ImpressionClickSerdes {
  return {
    impression: avroSerde<Impression>(ImpressionSchema),
    click: avroSerde<Click>(ClickSchema),
    adEvent: avroSerde<AdEvent>(AdEventSchema),
    campaignCtr: avroSerde<CampaignCtr>(CampaignCtrSchema),
  }
}
